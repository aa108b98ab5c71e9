#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace kervan {

// Names of the on-disk checkpoint format (docs/checkpoint-format.md):
//
//   DIR/latest                    "step_00001000\n": the newest committed checkpoint
//   DIR/lock                      held (flock) by the job writing into DIR
//   DIR/step_00001000/            one committed checkpoint (the state after 1000 optimizer steps)
//       manifest.json             written last: files, tensors, checksums, values, layout
//       rank_00000.h5 ...         one HDF5 file per rank that writes anything
//   DIR/step_00001000.tmp/        a checkpoint being written (never loaded; removed at start-up)
//
// A new format version is a new number here; readers refuse versions they do not know.
inline constexpr int kCheckpointFormatVersion = 1;
inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kLatestFile = "latest";
inline constexpr const char* kLockFile = "lock";
// Marks a folder as kervan's checkpoint folder (written when kervan first uses it).
inline constexpr const char* kOwnerFile = ".kervan-checkpoints";
inline constexpr const char* kTmpSuffix = ".tmp";
// Checkpoints being deleted by retention are renamed to this prefix first, so a kill mid-delete
// never leaves something that looks like a checkpoint.
inline constexpr const char* kTrashPrefix = ".trash_";

std::string step_folder_name(int64_t step);  // step_00001000
// The step of a committed checkpoint's folder name, or nothing for any other name.
std::optional<int64_t> parse_step_folder(const std::string& name);
std::string rank_file_name(int rank);     // rank_00003.h5: the rank's tensors
std::string rank_record_name(int rank);   // rank_00003.json: what it wrote (merged into the manifest)
std::string rank_failure_name(int rank);  // rank_00003.failed: why it could not write

}  // namespace kervan
