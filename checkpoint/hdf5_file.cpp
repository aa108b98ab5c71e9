#include "checkpoint/hdf5_file.h"

#include <hdf5.h>

#include <mutex>
#include <type_traits>

#include "core/error.h"

namespace kervan {

static_assert(std::is_same_v<hid_t, int64_t>, "Hdf5File keeps hid_t as int64_t");

namespace {

std::recursive_mutex& hdf5_lock() {
  static std::recursive_mutex m;
  return m;
}

// HDF5 prints its error stack to stderr by default; kervan reports errors itself. Nor may HDF5
// flush at exit: every file is closed explicitly, and a file whose write failed (a full disk)
// would be flushed again from the atexit handler, which crashes on such a file.
void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

// The innermost message of HDF5's error stack (walked from the API call inwards); for an I/O
// failure only the operating system's part of it.
std::string hdf5_message() {
  std::string innermost;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        if (e->desc && *e->desc) *static_cast<std::string*>(out) = e->desc;
        return 0;
      },
      &innermost);
  const std::string tag = "error message = '";
  const size_t at = innermost.find(tag);
  if (at != std::string::npos) {
    const size_t end = innermost.find('\'', at + tag.size());
    return innermost.substr(at + tag.size(),
                            end == std::string::npos ? std::string::npos : end - at - tag.size());
  }
  return innermost.empty() ? "unknown HDF5 error" : innermost;
}

// An HDF5 identifier closed on every path out.
class Id {
 public:
  Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Id() {
    if (id_ >= 0) close_(id_);
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

hid_t file_type(DType t) {
  switch (t) {
    case DType::F32:
      return H5T_IEEE_F32LE;
    case DType::F64:
      return H5T_IEEE_F64LE;
    case DType::I32:
      return H5T_STD_I32LE;
    case DType::BF16:  // raw 16-bit patterns; the manifest records the dtype
    case DType::U16:
      return H5T_STD_U16LE;
  }
  return -1;
}

hid_t memory_type(DType t) {
  switch (t) {
    case DType::F32:
      return H5T_NATIVE_FLOAT;
    case DType::F64:
      return H5T_NATIVE_DOUBLE;
    case DType::I32:
      return H5T_NATIVE_INT32;
    case DType::BF16:
    case DType::U16:
      return H5T_NATIVE_UINT16;
  }
  return -1;
}

// A 1-D selection of `count` runs of `block` elements, `stride` apart, from `begin`.
bool select_runs(hid_t space, int64_t begin, int64_t stride, int64_t count, int64_t block) {
  const hsize_t start = begin, str = count > 1 ? stride : block, cnt = count, blk = block;
  return H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, &str, &cnt, &blk) >= 0;
}

}  // namespace

Hdf5File Hdf5File::create(const std::string& path) {
  std::lock_guard lock(hdf5_lock());
  silence_hdf5();
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) throw EnvironmentError("H5Fcreate", "'" + path + "'", hdf5_message());
  return Hdf5File(id, path, true);
}

Hdf5File Hdf5File::open_read(const std::string& path) {
  std::lock_guard lock(hdf5_lock());
  silence_hdf5();
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) throw UserError(path + ": cannot open as HDF5: " + hdf5_message());
  return Hdf5File(id, path, false);
}

Hdf5File::Hdf5File(Hdf5File&& other) noexcept
    : id_(other.id_), path_(std::move(other.path_)), writing_(other.writing_) {
  other.id_ = -1;
}

Hdf5File::~Hdf5File() {
  if (id_ < 0) return;
  std::lock_guard lock(hdf5_lock());
  H5Fclose(id_);
}

void Hdf5File::close() {
  std::lock_guard lock(hdf5_lock());
  const hid_t id = id_;
  id_ = -1;
  if (id >= 0 && H5Fclose(id) < 0) {
    if (writing_) throw EnvironmentError("H5Fclose", "'" + path_ + "'", hdf5_message());
    throw UserError(path_ + ": " + hdf5_message());
  }
}

void Hdf5File::set_root_attribute(const std::string& name, int64_t value) {
  std::lock_guard lock(hdf5_lock());
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id attr(H5Acreate2(id_, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    throw EnvironmentError("H5Awrite", "'" + path_ + "' attribute " + name, hdf5_message());
}

int64_t Hdf5File::root_attribute(const std::string& name) const {
  std::lock_guard lock(hdf5_lock());
  int64_t value = 0;
  Id attr(H5Aopen(id_, name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!attr.ok() || H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    throw UserError(path_ + ": no root attribute '" + name + "' (" + hdf5_message() + ")");
  return value;
}

void Hdf5File::write(const std::string& dataset, DType dtype, const void* data, int64_t count,
                     const Attributes& attributes) {
  std::lock_guard lock(hdf5_lock());
  const std::string where = "'" + path_ + "' dataset " + dataset;
  const hsize_t n = count;
  Id space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Id links(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  Id layout(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  // Never write fill values first: every element is written once, by H5Dwrite.
  if (!space.ok() || H5Pset_create_intermediate_group(links.get(), 1) < 0 ||
      H5Pset_fill_time(layout.get(), H5D_FILL_TIME_NEVER) < 0)
    throw EnvironmentError("H5Pcreate", where, hdf5_message());
  Id ds(
      H5Dcreate2(id_, dataset.c_str(), file_type(dtype), space.get(), links.get(), layout.get(), H5P_DEFAULT),
      H5Dclose);
  if (!ds.ok()) throw EnvironmentError("H5Dcreate", where, hdf5_message());
  if (H5Dwrite(ds.get(), memory_type(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw EnvironmentError("H5Dwrite", where, hdf5_message());
  for (const Attribute& a : attributes) {
    KERVAN_CHECK(!a.scalar || a.values.size() == 1, "a scalar attribute holds one value");
    const hsize_t k = a.values.size();
    Id aspace(a.scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &k, nullptr), H5Sclose);
    Id attr(H5Acreate2(ds.get(), a.name.c_str(), H5T_STD_I64LE, aspace.get(), H5P_DEFAULT, H5P_DEFAULT),
            H5Aclose);
    if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_INT64, a.values.data()) < 0)
      throw EnvironmentError("H5Awrite", where + " attribute " + a.name, hdf5_message());
  }
}

int64_t Hdf5File::dataset_size(const std::string& dataset) const {
  std::lock_guard lock(hdf5_lock());
  Id ds(H5Dopen2(id_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) throw UserError(path_ + ": cannot open dataset " + dataset + ": " + hdf5_message());
  Id space(H5Dget_space(ds.get()), H5Sclose);
  hsize_t n = 0;
  if (!space.ok() || H5Sget_simple_extent_ndims(space.get()) != 1 ||
      H5Sget_simple_extent_dims(space.get(), &n, nullptr) < 0)
    throw UserError(path_ + ": dataset " + dataset + " is not one-dimensional");
  return static_cast<int64_t>(n);
}

void Hdf5File::read(const std::string& dataset, DType dtype, const std::vector<StridedCopy>& copies,
                    void* dst) const {
  std::lock_guard lock(hdf5_lock());
  Id ds(H5Dopen2(id_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) throw UserError(path_ + ": cannot open dataset " + dataset + ": " + hdf5_message());
  Id file_space(H5Dget_space(ds.get()), H5Sclose);
  hsize_t stored = 0;
  if (!file_space.ok() || H5Sget_simple_extent_ndims(file_space.get()) != 1 ||
      H5Sget_simple_extent_dims(file_space.get(), &stored, nullptr) < 0)
    throw UserError(path_ + ": dataset " + dataset + " is not one-dimensional");
  for (const StridedCopy& c : copies) {
    if (c.count <= 0 || c.block <= 0) continue;
    const int64_t src_end = c.src_begin + (c.count - 1) * c.src_stride + c.block;
    if (src_end > static_cast<int64_t>(stored))
      throw UserError(path_ + ": dataset " + dataset + " holds " + std::to_string(stored) +
                      " elements, fewer than its manifest entry says");
    const hsize_t dst_extent = c.dst_begin + (c.count - 1) * c.dst_stride + c.block;
    Id mem_space(H5Screate_simple(1, &dst_extent, nullptr), H5Sclose);
    if (!mem_space.ok() || !select_runs(file_space.get(), c.src_begin, c.src_stride, c.count, c.block) ||
        !select_runs(mem_space.get(), c.dst_begin, c.dst_stride, c.count, c.block) ||
        H5Dread(ds.get(), memory_type(dtype), mem_space.get(), file_space.get(), H5P_DEFAULT, dst) < 0)
      throw UserError(path_ + ": cannot read dataset " + dataset + ": " + hdf5_message());
  }
}

}  // namespace kervan
