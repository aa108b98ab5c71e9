#include "checkpoint/verify.h"

#include <filesystem>
#include <system_error>

#include "checkpoint/durable_io.h"
#include "checkpoint/hdf5_file.h"
#include "checkpoint/rank_writer.h"
#include "core/error.h"

namespace kervan {

namespace {

// The tensors of one file whose data no longer match their checksums; when HDF5 cannot read the
// file's structure at all, the problem says so instead.
void name_damaged_tensors(const Manifest& m, const SavedFile& f, const std::string& path, Damage& d) {
  try {
    const Hdf5File file = Hdf5File::open_read(path);
    std::vector<char> buf;
    for (const SavedTensor& t : m.tensors) {
      if (t.file != f.name) continue;
      const int64_t n = t.slice.flat_count;
      buf.resize(n * dtype_size(t.dtype));
      bool ok = true;
      try {
        file.read(t.dataset, t.dtype, {{0, 0, n, 1, n, n}}, buf.data());
        ok = tensor_checksum(buf.data(), static_cast<int64_t>(buf.size())) == t.checksum;
      } catch (const UserError&) {
        ok = false;
      }
      if (!ok) d.tensors.push_back(t.name + " " + t.slice.describe());
    }
  } catch (const UserError& e) {
    d.problem += "; its HDF5 structure is unreadable (" + std::string(e.what()) + ")";
  }
}

}  // namespace

std::string Damage::describe() const {
  std::string s = file + ": " + problem;
  if (!tensors.empty()) {
    s += "; damaged tensor" + std::string(tensors.size() > 1 ? "s: " : ": ");
    for (size_t i = 0; i < tensors.size(); ++i) s += (i ? ", " : "") + tensors[i];
  }
  return s;
}

std::vector<Damage> verify_checkpoint(const CheckpointReader& checkpoint, int part, int parts) {
  const Manifest& m = checkpoint.manifest();
  std::vector<Damage> out;
  for (size_t i = part; i < m.files.size(); i += parts) {
    const SavedFile& f = m.files[i];
    const std::string path = checkpoint.folder() + "/" + f.name;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      out.push_back({path, "missing", {}});
      continue;
    }
    FileDigest got;
    try {
      got = digest_file(path, false);
    } catch (const EnvironmentError& e) {
      out.push_back({path, e.what(), {}});
      continue;
    }
    if (got.bytes == f.bytes && got.checksum == f.checksum) continue;
    Damage d{path, "", {}};
    d.problem =
        got.bytes != f.bytes
            ? "size " + std::to_string(got.bytes) + " bytes, the manifest says " + std::to_string(f.bytes)
            : "checksum " + xxh3_hex(got.checksum) + ", the manifest says " + xxh3_hex(f.checksum);
    name_damaged_tensors(m, f, path, d);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace kervan
