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
// A rank that failed, or did not finish within the timeout, is an EnvironmentError naming it; the
// partial folder is removed (failure) or left for the next start-up to clear (timeout).
void commit_checkpoint(const std::string& dir, int64_t step, const CommitOptions& options,
                       const std::map<std::string, StateValue>& values);

}  // namespace kervan
