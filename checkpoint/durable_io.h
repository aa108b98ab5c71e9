#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace kervan {

// File operations of a checkpoint that must survive a crash at any instant. Failures of the
// operating system (a full disk, an I/O error) are EnvironmentErrors naming the call and the path.

// Replaces `path` by a file holding `text` so that readers see the old file or the complete new
// one: PATH.tmp is written and fsynced, renamed over PATH, and the folder fsynced. The crash tests
// can kill the process just before the rename (failpoint `failpoint_before_rename`).
void write_durably(const std::string& path, std::string_view text,
                   const char* failpoint_before_rename = nullptr, int64_t failpoint_at = -1);
// rename(from, to), then fsync of the folder of `to`, so the new name survives a crash.
void rename_durably(const std::string& from, const std::string& to);
// fsync of a file or a folder.
void sync_path(const std::string& path);

// The XXH3-64 of a file's bytes and their number; with `sync`, the file is also fsynced.
struct FileDigest {
  int64_t bytes = 0;
  uint64_t checksum = 0;
};
FileDigest digest_file(const std::string& path, bool sync);

// A whole small file (a manifest, `latest`); a missing or unreadable file is a UserError naming it.
std::string read_small_file(const std::string& path);

}  // namespace kervan
