#pragma once
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "coordinator/coordinator_client.h"

namespace kervan {

// A training worker's membership in its job: registered with the coordinator (rank, DP/TP
// coordinates, host), it heartbeats on a background thread with the progress the trainer last
// reported, so that `kervan status` shows it and a worker that falls silent is reported dead
// (with its rank and host) long before a collective would time out. The coordinator's answer
// carries a stop request (`kervan status --stop`, or a dead worker with --stop-on-dead-worker),
// which the trainer checks between steps.
class WorkerSession {
 public:
  WorkerSession(std::shared_ptr<CoordinatorClient> client, const coordinator::v1::WorkerIdentity& me,
                const coordinator::v1::RunShape& run);
  ~WorkerSession();  // a last heartbeat says the worker finished (not dead); best effort
  WorkerSession(const WorkerSession&) = delete;
  WorkerSession& operator=(const WorkerSession&) = delete;

  // What the next heartbeat reports.
  void progress(int64_t step, int64_t consumed_samples, double tokens_per_s);
  // Set once a heartbeat's answer asked the job to stop.
  bool stop_requested() const { return stop_requested_; }
  std::string stop_reason() const;
  // The data position the job last committed (at a checkpoint), as of registration.
  const std::optional<coordinator::v1::DataPosition>& committed() const { return committed_; }
  // Journals a data position with the checkpoint that holds it (called after the checkpoint is complete).
  void commit_position(int64_t step, int64_t consumed_samples, const std::string& checkpoint);
  uint64_t worker_id() const { return worker_id_; }

 private:
  void heartbeat_loop();
  coordinator::v1::HeartbeatRequest next_heartbeat(bool finished);

  std::shared_ptr<CoordinatorClient> client_;
  uint64_t worker_id_ = 0;
  std::chrono::milliseconds interval_{1000};
  std::optional<coordinator::v1::DataPosition> committed_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t step_ = -1, consumed_ = 0;
  double tokens_per_s_ = 0;
  std::atomic<bool> stop_requested_ = false;
  std::string stop_reason_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kervan
