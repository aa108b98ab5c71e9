#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/slice_overlap.h"
#include "core/dtype.h"

namespace kervan {

// The part of the HDF5 C library a checkpoint uses: 1-D datasets (a slice's flat elements) with
// integer attributes, written whole and read back in strided pieces. Debian's parallel HDF5 is
// not built thread-safe, so every call here holds one process-wide lock: an asynchronous save
// writes on its own thread while the main thread may open another file.
//
// Errors carry HDF5's innermost message (for a failed write, the operating system's, such as
// "No space left on device"): writing is an EnvironmentError, reading a file that exists is a
// UserError (a damaged checkpoint).
class Hdf5File {
 public:
  // An integer attribute of a dataset: a scalar (values holds one) or a vector.
  struct Attribute {
    std::string name;
    std::vector<int64_t> values;
    bool scalar = false;
  };
  using Attributes = std::vector<Attribute>;

  static Hdf5File create(const std::string& path);  // truncates
  static Hdf5File open_read(const std::string& path);
  Hdf5File(Hdf5File&& other) noexcept;
  Hdf5File& operator=(Hdf5File&&) = delete;
  Hdf5File(const Hdf5File&) = delete;
  ~Hdf5File();

  const std::string& path() const { return path_; }

  // An integer attribute of the file's root group.
  void set_root_attribute(const std::string& name, int64_t value);
  // The root attribute `name`; a UserError naming the file when it is absent.
  int64_t root_attribute(const std::string& name) const;

  // A 1-D dataset at `dataset` (groups created as needed) of `count` elements of `dtype` from
  // host memory, with integer-vector attributes.
  void write(const std::string& dataset, DType dtype, const void* data, int64_t count,
             const Attributes& attributes);
  // Elements of a 1-D dataset into host memory `dst`: each copy's src positions are in the
  // dataset, its dst positions in `dst`.
  void read(const std::string& dataset, DType dtype, const std::vector<StridedCopy>& copies, void* dst) const;
  // The number of elements of a 1-D dataset.
  int64_t dataset_size(const std::string& dataset) const;

  // Closes the file (flushing what HDF5 buffers); an error is reported, unlike in the destructor.
  void close();

 private:
  Hdf5File(int64_t id, std::string path, bool writing) : id_(id), path_(std::move(path)), writing_(writing) {}
  int64_t id_;
  std::string path_;
  bool writing_;
};

}  // namespace kervan
