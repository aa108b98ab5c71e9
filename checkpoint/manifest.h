#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/state.h"

namespace kervan {

// The parallel layout of a job, and one rank's place in it (recorded, never needed to read).
struct WriterLayout {
  int world_size = 1, dp = 1, tp = 1;
  bool zero1 = false;
  int rank = 0, dp_rank = 0, tp_rank = 0;
  std::string describe() const;  // "DP=2 x TP=2, ZeRO-1 (4 ranks)"
};

// One HDF5 file of a checkpoint: its name in the step folder, size and XXH3-64 of all its bytes.
struct SavedFile {
  std::string name;
  int64_t bytes = 0;
  uint64_t checksum = 0;
};

// One saved slice: which slice of which global tensor, where it is stored, and the XXH3-64 of its
// flat_count elements (little-endian), so a damaged tensor can be named.
struct SavedTensor {
  std::string name;
  TensorSlice slice;
  DType dtype = DType::F32;
  int replica = -1;
  std::string file;     // in the step folder
  std::string dataset;  // HDF5 path in the file
  uint64_t checksum = 0;
};

// What one rank wrote (rank_NNNNN.json), merged by rank 0 into the manifest.
struct RankRecord {
  WriterLayout layout;
  std::optional<SavedFile> file;  // none when the rank wrote no tensor
  std::vector<SavedTensor> tensors;
};

// manifest.json of a committed checkpoint: everything needed to check and read it.
struct Manifest {
  int format_version = 0;
  int64_t step = 0;
  std::string kervan_version, git_commit, created;  // created: UTC, ISO 8601
  WriterLayout layout;                              // rank fields unused
  std::vector<SavedFile> files;
  std::vector<SavedTensor> tensors;
  std::map<std::string, StateValue> values;
};

// A checkpoint of another format version: never read (nor skipped as if damaged).
class CheckpointVersionError : public UserError {
 public:
  using UserError::UserError;
};

std::string manifest_to_json(const Manifest& m);
// Parses and checks a manifest; `path` names it in errors. A manifest that does not parse, lacks
// a field or has one of the wrong type is a UserError ("PATH: damaged manifest: ..."); another
// format version is a CheckpointVersionError saying which.
Manifest manifest_from_json(const std::string& text, const std::string& path);

std::string rank_record_to_json(const RankRecord& r);
RankRecord rank_record_from_json(const std::string& text, const std::string& path);

// Checksums are written as 16 hex digits.
std::string xxh3_hex(uint64_t checksum);

}  // namespace kervan
