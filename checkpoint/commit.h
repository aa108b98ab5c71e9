#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "core/state.h"

namespace kervan {

struct CommitOptions {
  int world_size = 1;
  double timeout_s = 600.0;  // how long to wait for the slowest rank's part
  int64_t keep_last = 3;     // retention (checkpoint_dir.h: steps_to_delete)
  int64_t keep_every = 0;
};

// Rank 0's end of saving step `step` into `dir`, once its own part is written: waits until every
// rank has left its record (or a failure) in step_N.tmp; writes manifest.json (every file and
// tensor with its checksum, `values`, the layout, the kervan version and commit) and fsyncs it;
// renames step_N.tmp to step_N, which makes the checkpoint visible; points `latest` at it; then
// deletes what retention no longer keeps. Until the rename nothing visible changes, so a crash at
// any point leaves the previous checkpoint as `latest`.
//
// A rank that failed, or did not finish within the timeout, is an EnvironmentError naming it.
// Whatever fails before the rename, step_N.tmp (kervan's own folder, in a checkpoint folder it
// claimed) is removed once every rank is done with it (or the wait timed out), so a failed save
// leaves nothing behind (checkpoint.on_failure = "continue" trains on).
void commit_checkpoint(const std::string& dir, int64_t step, const CommitOptions& options,
                       const std::map<std::string, StateValue>& values);

// Rank 0's end of a save whose own part failed: waits (within the timeout) until the other ranks
// are done with step_N.tmp, then removes it. Never throws.
void abandon_checkpoint(const std::string& dir, int64_t step, const CommitOptions& options) noexcept;

}  // namespace kervan
