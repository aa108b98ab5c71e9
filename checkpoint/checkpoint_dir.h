#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kervan {

// The folder that holds a job's checkpoints (checkpoint.dir): which steps are committed, which is
// `latest`, what retention removes, and the lock that keeps a second job out.

// Steps whose folder step_N holds a manifest.json (committed; not yet verified), oldest first.
std::vector<int64_t> committed_steps(const std::string& dir);
// The folder of a step.
std::string step_folder(const std::string& dir, int64_t step);
// The checkpoint `path` names: itself when it is a step folder (step_N, committed or not: the
// reader says what is wrong with it), else the newest committed one in it as a checkpoint folder.
// A UserError naming the path and `what` (a config key or command) when there is none.
std::string resolve_checkpoint_folder(const std::string& path, const std::string& what);

// The step `latest` names; nothing when there is no `latest`. A `latest` that does not parse or
// names a folder without a manifest is a UserError naming it.
std::optional<int64_t> read_latest(const std::string& dir);
// Points `latest` at `step`, atomically.
void write_latest(const std::string& dir, int64_t step);

// Retention: of committed `steps` (oldest first), those to delete so that the newest `keep_last`
// remain, plus every step that is a multiple of `keep_every` (> 0), which stay forever.
std::vector<int64_t> steps_to_delete(const std::vector<int64_t>& steps, int64_t keep_last,
                                     int64_t keep_every);
// Deletes a committed checkpoint: renamed out of sight first, so a kill midway leaves no folder
// that looks like a checkpoint.
void delete_checkpoint(const std::string& dir, int64_t step);
// Removes what killed jobs leave: step folders still being written (*.tmp), half-deleted ones and
// a `latest` being replaced.
// Returns how many it removed.
int remove_stale_parts(const std::string& dir);

// An exclusive lock (flock) on DIR/lock for as long as the object lives; the kernel releases it
// when the process dies, so a killed job never locks out its own resume. The file names the
// holder (host and pid) for the message a second job gets.
class DirLock {
 public:
  // Creates `dir` if needed. A folder that cannot be created or written is a UserError naming it
  // and `what` (the config key); a lock held by another job is a UserError naming the holder.
  DirLock(const std::string& dir, const std::string& what);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

// Makes `dir` kervan's checkpoint folder, or refuses it: it may be new (created), empty, or one
// kervan has used before (its marker file, or committed checkpoints); a folder holding anything
// else is a UserError naming `what` and a file, so that retention, clean-up and the lock never touch
// files kervan did not write. Writes the marker.
void claim_checkpoint_dir(const std::string& dir, const std::string& what);

// Checks that this process can create files in `dir` (which must exist): a UserError naming it and
// `what` otherwise.
void check_writable(const std::string& dir, const std::string& what, int rank);

}  // namespace kervan
