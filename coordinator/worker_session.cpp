#include "coordinator/worker_session.h"

#include <spdlog/spdlog.h>

namespace kervan {

namespace v1 = coordinator::v1;

WorkerSession::WorkerSession(std::shared_ptr<CoordinatorClient> client, const v1::WorkerIdentity& me,
                             const v1::RunShape& run)
    : client_(std::move(client)) {
  const v1::RegisterResponse r = client_->register_worker(me, run);
  worker_id_ = r.worker_id();
  interval_ = std::chrono::milliseconds(std::max<uint32_t>(r.heartbeat_interval_ms(), 10));
  if (r.has_committed()) committed_ = r.committed();
  thread_ = std::thread([this] { heartbeat_loop(); });
}

WorkerSession::~WorkerSession() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  try {
    client_->heartbeat(next_heartbeat(/*finished=*/true));
  } catch (const std::exception& e) {  // the coordinator may be gone at the end of a job
    spdlog::debug("last heartbeat not delivered: {}", e.what());
  }
}

void WorkerSession::progress(int64_t step, int64_t consumed_samples, double tokens_per_s) {
  std::lock_guard lock(mu_);
  step_ = step;
  consumed_ = consumed_samples;
  tokens_per_s_ = tokens_per_s;
}

std::string WorkerSession::stop_reason() const {
  std::lock_guard lock(mu_);
  return stop_reason_;
}

void WorkerSession::commit_position(int64_t step, int64_t consumed_samples, const std::string& checkpoint) {
  v1::DataPosition p;
  p.set_step(step);
  p.set_consumed_samples(consumed_samples);
  p.set_checkpoint(checkpoint);
  client_->commit_position(worker_id_, p);
}

v1::HeartbeatRequest WorkerSession::next_heartbeat(bool finished) {
  std::lock_guard lock(mu_);
  v1::HeartbeatRequest req;
  req.set_worker_id(worker_id_);
  req.set_step(step_);
  req.set_consumed_samples(consumed_);
  req.set_tokens_per_s(tokens_per_s_);
  req.set_finished(finished);
  return req;
}

// Heartbeats keep going while the coordinator is away (the client retries each one for its
// retry time); a failure is logged once, and the next success says so.
void WorkerSession::heartbeat_loop() {
  bool failing = false;
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, interval_, [&] { return stopping_; })) {
    lock.unlock();
    try {
      const v1::HeartbeatResponse r = client_->heartbeat(next_heartbeat(false));
      if (failing) spdlog::info("heartbeats reach the coordinator at {} again", client_->address());
      failing = false;
      if (r.stop() && !stop_requested_) {
        std::lock_guard reason_lock(mu_);
        stop_reason_ = r.stop_reason();
        stop_requested_ = true;
      }
    } catch (const std::exception& e) {
      if (!failing) spdlog::warn("heartbeat to the coordinator failed: {}", e.what());
      failing = true;
    }
    lock.lock();
  }
}

}  // namespace kervan
