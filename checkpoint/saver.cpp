#include "checkpoint/saver.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <utility>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/commit.h"
#include "checkpoint/format.h"
#include "checkpoint/rank_writer.h"

namespace kervan {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
// CPU seconds (user + system) the calling thread has used.
double thread_cpu_s() {
  rusage r{};
  getrusage(RUSAGE_THREAD, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
}
}  // namespace

CheckpointSaver::CheckpointSaver(SaverOptions options, WriterLayout layout, Backend& backend)
    : options_(std::move(options)), layout_(layout), backend_(backend) {}

CheckpointSaver::~CheckpointSaver() {
  if (worker_.joinable()) worker_.join();
}

void CheckpointSaver::write(int64_t step) {
  const auto t0 = Clock::now();
  const double cpu0 = thread_cpu_s();
  bool written = false;
  try {
    write_rank_part(step_folder(options_.dir, step) + kTmpSuffix, step, layout_, snapshot_.tensors());
    written = true;
    if (layout_.rank == 0) commit_checkpoint(options_.dir, step, options_.commit, snapshot_.values());
  } catch (...) {
    failure_ = std::current_exception();
    // Rank 0's own part failed: nothing will commit step_N.tmp, so it goes once the others are
    // done with it (commit_checkpoint removes it on every failure of its own).
    if (!written && layout_.rank == 0) abandon_checkpoint(options_.dir, step, options_.commit);
  }
  write_s_ = since(t0);
  write_cpu_s_ = thread_cpu_s() - cpu0;
}

void CheckpointSaver::save(int64_t step, const StateDict& state) {
  wait();
  const auto t0 = Clock::now();
  snapshot_.take(state, backend_, /*copy=*/options_.async);
  blocked_s_ = since(t0);
  if (!options_.async) {
    write(step);
    blocked_s_ = since(t0);
    wait();  // rethrows a failure
    return;
  }
  finished_ = false;
  worker_ = std::thread([this, step] {
    // Training comes first: the writer thread runs at a lower priority (nice +10), so on a
    // machine whose cores are all busy training its hashing and copying wait for idle time.
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
    write(step);
    finished_ = true;
  });
}

void CheckpointSaver::wait() {
  if (worker_.joinable()) worker_.join();
  if (std::exception_ptr e = std::exchange(failure_, nullptr)) std::rethrow_exception(e);
}

std::exception_ptr CheckpointSaver::take_failure() {
  if (!finished_) return nullptr;
  if (worker_.joinable()) worker_.join();
  return std::exchange(failure_, nullptr);
}

}  // namespace kervan
