#pragma once
#include <atomic>
#include <cstdint>
#include <exception>
#include <string>
#include <thread>

#include "checkpoint/commit.h"
#include "checkpoint/manifest.h"
#include "checkpoint/snapshot.h"

namespace kervan {

struct SaverOptions {
  std::string dir;    // checkpoint.dir
  bool async = true;  // write on a background thread (checkpoint.async)
  CommitOptions commit;
};

// One rank's side of saving checkpoints, synchronously or in the background.
//
// Every rank calls save() at the same step with its own state: it writes the tensors it is the
// writer of into its own file of the step folder, and rank 0 then commits the folder (commit.h).
// Nothing here is collective: ranks meet only through the files, so a background save never
// issues a collective while training issues its own. With `async`, save() copies the writer
// tensors into a host buffer and returns; a thread writes them while training goes on. The next
// save() (or wait()) first waits for that one, so at most one save is in flight and the buffer is
// reused. A failed background save is reported by take_failure() or the next save()/wait(); the
// checkpoints committed before it are untouched.
class CheckpointSaver {
 public:
  CheckpointSaver(SaverOptions options, WriterLayout layout, Backend& backend);
  // Waits for a save in flight; its failure, if any, is dropped (call wait() to see it).
  ~CheckpointSaver();
  CheckpointSaver(const CheckpointSaver&) = delete;
  CheckpointSaver& operator=(const CheckpointSaver&) = delete;

  // Saves `state` (this rank's) as the checkpoint of `step`. Waits for the previous save first and
  // rethrows its failure. Returns once `state` may change again: async, when it is copied; sync,
  // when this rank's part is written (on rank 0: committed).
  void save(int64_t step, const StateDict& state);
  // Waits for the save in flight and rethrows its failure (an EnvironmentError or UserError).
  void wait();
  // The failure of a background save that has finished, once; null while none (or still running).
  std::exception_ptr take_failure();
  // Whether a background save is still writing.
  bool in_flight() const { return !finished_; }

  // The last save: seconds save() blocked the caller (the copy, for async), seconds its write
  // (and, on rank 0, the commit) took, and CPU seconds (user + system) the writing thread used
  // for it: what a background save takes from training on a machine whose cores are all busy.
  // Valid after wait().
  double last_blocked_s() const { return blocked_s_; }
  double last_write_s() const { return write_s_; }
  double last_write_cpu_s() const { return write_cpu_s_; }
  int64_t last_bytes() const { return snapshot_.bytes(); }

 private:
  void write(int64_t step);  // this rank's part, then rank 0's commit; records a failure

  SaverOptions options_;
  WriterLayout layout_;
  Backend& backend_;
  StateSnapshot snapshot_;
  std::thread worker_;
  std::atomic<bool> finished_{true};
  std::exception_ptr failure_;
  double blocked_s_ = 0.0, write_s_ = 0.0, write_cpu_s_ = 0.0;
};

}  // namespace kervan
