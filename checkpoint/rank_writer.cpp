#include "checkpoint/rank_writer.h"

#include <filesystem>
#include <map>
#include <system_error>

#include "checkpoint/durable_io.h"
#include "checkpoint/failpoint.h"
#include "checkpoint/format.h"
#include "checkpoint/hdf5_file.h"
#include "core/xxh3_inline.h"
#include "core/error.h"

namespace kervan {

namespace {

RankRecord write_part(const std::string& folder, int64_t step, const WriterLayout& layout,
                      const std::vector<SnapshotTensor>& tensors) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) throw EnvironmentError("mkdir", "'" + folder + "'", ec.message());
  RankRecord record;
  record.layout = layout;
  if (!tensors.empty()) {
    const std::string name = rank_file_name(layout.rank), path = folder + "/" + name;
    Hdf5File file = Hdf5File::create(path);
    file.set_root_attribute("kervan_checkpoint_format", kCheckpointFormatVersion);
    file.set_root_attribute("step", step);
    file.set_root_attribute("rank", layout.rank);
    std::map<std::string, int> slices_of;  // a rank may hold several slices of one tensor
    for (const SnapshotTensor& t : tensors) {
      SavedTensor s{t.name, t.slice, t.dtype, t.replica, name, "", tensor_checksum(t.data, t.bytes())};
      s.dataset = t.name + "/" + std::to_string(slices_of[t.name]++);
      file.write(s.dataset, t.dtype, t.data, t.slice.flat_count,
                 {{"global_shape", t.slice.global_shape},
                  {"offsets", t.slice.offsets},
                  {"box", t.slice.box},
                  {"flat_begin", {t.slice.flat_begin}, true},
                  {"replica", {t.replica}, true}});
      record.tensors.push_back(std::move(s));
    }
    file.close();
    failpoint("rank_file_written");
    const FileDigest digest = digest_file(path, /*sync=*/true);
    record.file = SavedFile{name, digest.bytes, digest.checksum};
  }
  write_durably(folder + "/" + rank_record_name(layout.rank), rank_record_to_json(record));
  return record;
}

}  // namespace

uint64_t tensor_checksum(const void* data, int64_t bytes) {
  return XXH3_64bits(data, static_cast<size_t>(bytes));
}

RankRecord write_rank_part(const std::string& folder, int64_t step, const WriterLayout& layout,
                           const std::vector<SnapshotTensor>& tensors) {
  try {
    return write_part(folder, step, layout, tensors);
  } catch (const std::exception& e) {
    // Free the space a partial file holds (the disk may be full), then say why, best effort:
    // rank 0 waits for this file or the record.
    std::error_code ec;
    std::filesystem::remove(folder + "/" + rank_file_name(layout.rank), ec);
    try {
      write_durably(folder + "/" + rank_failure_name(layout.rank), e.what());
    } catch (const std::exception&) {
    }
    throw;
  }
}

}  // namespace kervan
