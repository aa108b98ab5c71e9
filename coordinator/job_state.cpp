#include "coordinator/job_state.h"

#include <fmt/format.h>

#include <algorithm>

namespace kervan {

namespace v1 = coordinator::v1;
using grpc::Status;
using grpc::StatusCode;

namespace {

constexpr size_t kMaxHostBytes = 256;
constexpr uint32_t kLeaseRetryMs = 500;

}  // namespace

JobState::JobState(std::string job_id, Timing timing, uint64_t train_tokens, int64_t now_ms)
    : job_id_(std::move(job_id)), timing_(timing), train_tokens_(train_tokens), started_ms_(now_ms) {}

void JobState::apply(const Record& record, int64_t now_ms) {
  switch (record.change_case()) {
    case Record::kRegistered: {
      const v1::WorkerRegistered& r = record.registered();
      Worker& w = workers_[r.worker_id()];
      w.identity = r.identity();
      w.run = r.run();
      w.last_heard_ms = now_ms;
      w.heard = true;
      next_worker_id_ = std::max(next_worker_id_, r.worker_id() + 1);
      break;
    }
    case Record::kCommitted:
      committed_ = record.committed().position();
      break;
    case Record::kPrepareBegun:
      prepare_ = Prepare{record.prepare_begun().plan_fingerprint(),
                         std::vector<Unit>(record.prepare_begun().unit_count() + 1)};
      break;
    case Record::kLeaseGranted: {
      const v1::LeaseGranted& g = record.lease_granted();
      if (!prepare_ || g.unit() >= prepare_->units.size()) break;  // cannot happen: plan_lease checked
      prepare_->units[g.unit()] = Unit{g.lease_id(), g.worker_id(), now_ms + timing_.lease_ms, false};
      lease_units_[g.lease_id()] = g.unit();
      next_lease_id_ = std::max(next_lease_id_, g.lease_id() + 1);
      break;
    }
    case Record::kUnitCompleted:
      if (prepare_ && record.unit_completed().unit() < prepare_->units.size())
        prepare_->units[record.unit_completed().unit()].done = true;
      break;
    case Record::kRendezvousSet:
      rendezvous_.emplace(record.rendezvous_set().key(), record.rendezvous_set().value());
      break;
    case Record::kStopRequested:
      // Its scope follows from the journal's order (the registrations before it), so a replay
      // gives it the same workers.
      stop_reason_ = record.stop_requested().reason();
      stop_before_worker_ = next_worker_id_;
      break;
    case Record::kHeader:
    case Record::CHANGE_NOT_SET:
      break;
  }
}

void JobState::restarted(int64_t now_ms) {
  started_ms_ = now_ms;
  for (auto& [id, w] : workers_) {
    w.heard = false;
    w.last_heard_ms = now_ms;
  }
  if (prepare_)
    for (Unit& u : prepare_->units)
      if (u.lease_id && !u.done) u.expires_ms = now_ms + timing_.lease_ms;
}

Status JobState::known_worker(uint64_t worker_id) const {
  if (workers_.contains(worker_id)) return Status::OK;
  return Status(StatusCode::NOT_FOUND, fmt::format("worker id {} is not registered with this coordinator "
                                                   "(register again)",
                                                   worker_id));
}

void JobState::heard_from(uint64_t worker_id, int64_t now_ms) {
  Worker& w = workers_.at(worker_id);
  w.last_heard_ms = now_ms;
  w.heard = true;
  w.reported_dead = false;
}

std::string JobState::describe_worker(uint64_t id) const {
  const auto it = workers_.find(id);
  if (it == workers_.end()) return fmt::format("worker {}", id);
  const v1::WorkerIdentity& w = it->second.identity;
  return fmt::format("worker {} (rank {}, host {}, pid {})", id, w.rank(), w.host(), w.pid());
}

Status JobState::plan_register(const v1::RegisterRequest& req, Record* record) {
  const v1::WorkerIdentity& w = req.worker();
  if (w.role() != v1::WORKER_ROLE_TRAIN && w.role() != v1::WORKER_ROLE_PREPARE)
    return Status(StatusCode::INVALID_ARGUMENT, "register: worker.role must be TRAIN or PREPARE");
  if (w.host().empty() || w.host().size() > kMaxHostBytes)
    return Status(StatusCode::INVALID_ARGUMENT, "register: worker.host must be 1 to 256 bytes");
  if (w.world_size() < 1 || w.rank() < 0 || w.rank() >= w.world_size())
    return Status(StatusCode::INVALID_ARGUMENT,
                  fmt::format("register: rank {} is not in a world of {}", w.rank(), w.world_size()));
  if (w.dp_size() < 1 || w.tp_size() < 1 || w.dp_rank() < 0 || w.dp_rank() >= w.dp_size() ||
      w.tp_rank() < 0 || w.tp_rank() >= w.tp_size())
    return Status(StatusCode::INVALID_ARGUMENT, "register: DP/TP coordinates out of range");
  const v1::RunShape& run = req.run();
  if (run.seq_len() < 0 || run.global_batch() < 0 || run.total_steps() < 0)
    return Status(StatusCode::INVALID_ARGUMENT, "register: run shape must not be negative");
  v1::WorkerRegistered* r = record->mutable_registered();
  r->set_worker_id(next_worker_id_);
  *r->mutable_identity() = w;
  *r->mutable_run() = run;
  return Status::OK;
}

void JobState::fill_register_response(uint64_t worker_id, v1::RegisterResponse* resp) const {
  resp->set_worker_id(worker_id);
  resp->set_heartbeat_interval_ms(timing_.heartbeat_interval_ms);
  resp->set_dead_after_ms(timing_.dead_after_ms);
  if (committed_) *resp->mutable_committed() = *committed_;
}

Status JobState::heartbeat(const v1::HeartbeatRequest& req, int64_t now_ms, v1::HeartbeatResponse* resp) {
  if (Status s = known_worker(req.worker_id()); !s.ok()) return s;
  if (req.step() < -1 || req.consumed_samples() < 0 || !(req.tokens_per_s() >= 0))
    return Status(StatusCode::INVALID_ARGUMENT,
                  "heartbeat: step, consumed_samples and tokens_per_s must not be negative");
  heard_from(req.worker_id(), now_ms);
  Worker& w = workers_.at(req.worker_id());
  w.step = req.step();
  w.consumed_samples = req.consumed_samples();
  w.tokens_per_s = req.tokens_per_s();
  w.finished = req.finished();
  if (stop_reason_ && req.worker_id() < stop_before_worker_) {
    resp->set_stop(true);
    resp->set_stop_reason(*stop_reason_);
  }
  return Status::OK;
}

Status JobState::plan_commit(const v1::CommitPositionRequest& req, Record* record) {
  if (Status s = known_worker(req.worker_id()); !s.ok()) return s;
  const v1::DataPosition& p = req.position();
  if (p.step() < 0 || p.consumed_samples() < 0)
    return Status(StatusCode::INVALID_ARGUMENT, "commit: step and consumed_samples must not be negative");
  v1::PositionCommitted* c = record->mutable_committed();
  c->set_worker_id(req.worker_id());
  *c->mutable_position() = p;
  return Status::OK;
}

Status JobState::plan_stop(const std::string& reason, Record* record) {
  if (reason.size() > 4096)
    return Status(StatusCode::INVALID_ARGUMENT, "stop: reason longer than 4096 bytes");
  record->mutable_stop_requested()->set_reason(reason.empty() ? "stop requested" : reason);
  return Status::OK;
}

Status JobState::plan_begin_prepare(const v1::BeginPrepareRequest& req, std::optional<Record>* record) {
  if (Status s = known_worker(req.worker_id()); !s.ok()) return s;
  if (req.unit_count() == 0 || req.unit_count() > 1'000'000)
    return Status(StatusCode::INVALID_ARGUMENT, "begin prepare: unit_count must be 1 to 1,000,000");
  if (prepare_) {
    if (prepare_->plan_fingerprint != req.plan_fingerprint() ||
        prepare_->units.size() != req.unit_count() + 1)
      return Status(
          StatusCode::FAILED_PRECONDITION,
          fmt::format("this job is preparing another plan ({} work units, plan {:016x}) than this worker's "
                      "({} units, plan {:016x}): same inputs and options on every worker",
                      prepare_->units.size() - 1, prepare_->plan_fingerprint, req.unit_count(),
                      req.plan_fingerprint()));
    return Status::OK;
  }
  Record r;
  r.mutable_prepare_begun()->set_plan_fingerprint(req.plan_fingerprint());
  r.mutable_prepare_begun()->set_unit_count(req.unit_count());
  *record = r;
  return Status::OK;
}

Status JobState::plan_lease(const v1::LeaseRequest& req, int64_t now_ms, std::optional<Record>* record,
                            v1::LeaseResponse* resp) {
  if (Status s = known_worker(req.worker_id()); !s.ok()) return s;
  if (!prepare_) return Status(StatusCode::FAILED_PRECONDITION, "lease: no prepare has begun in this job");
  heard_from(req.worker_id(), now_ms);
  const size_t work_units = prepare_->units.size() - 1;
  const bool units_done =
      std::all_of(prepare_->units.begin(), prepare_->units.end() - 1, [](const Unit& u) { return u.done; });
  if (units_done && prepare_->units.back().done) {
    resp->set_all_done(true);
    return Status::OK;
  }
  // The lowest open unit: never leased, or its lease ran out. The manifest step opens last.
  const size_t end = units_done ? work_units + 1 : work_units;
  for (size_t u = units_done ? work_units : 0; u < end; ++u) {
    const Unit& unit = prepare_->units[u];
    if (unit.done || (unit.lease_id && unit.expires_ms > now_ms)) continue;
    Record r;
    v1::LeaseGranted* g = r.mutable_lease_granted();
    g->set_lease_id(next_lease_id_);
    g->set_unit(static_cast<uint32_t>(u));
    g->set_worker_id(req.worker_id());
    *record = r;
    v1::Lease* lease = resp->mutable_lease();
    lease->set_lease_id(next_lease_id_);
    lease->set_unit(static_cast<uint32_t>(u));
    lease->set_expires_in_ms(timing_.lease_ms);
    return Status::OK;
  }
  resp->set_retry_in_ms(kLeaseRetryMs);
  return Status::OK;
}

Status JobState::held_unit(uint64_t lease_id, uint64_t worker_id, uint32_t* unit) const {
  if (!prepare_) return Status(StatusCode::FAILED_PRECONDITION, "no prepare has begun in this job");
  const auto it = lease_units_.find(lease_id);
  if (it == lease_units_.end())
    return Status(StatusCode::FAILED_PRECONDITION, fmt::format("lease {} was never granted", lease_id));
  const Unit& u = prepare_->units[it->second];
  if (u.lease_id != lease_id)
    return Status(StatusCode::FAILED_PRECONDITION,
                  fmt::format("lease {} of unit {} is no longer held: it ran out and the unit went to {}",
                              lease_id, it->second, describe_worker(u.worker_id)));
  if (u.worker_id != worker_id)
    return Status(StatusCode::FAILED_PRECONDITION,
                  fmt::format("lease {} of unit {} belongs to {}, not to worker {}", lease_id, it->second,
                              describe_worker(u.worker_id), worker_id));
  *unit = it->second;
  return Status::OK;
}

Status JobState::renew_lease(const v1::RenewLeaseRequest& req, int64_t now_ms, v1::RenewLeaseResponse* resp) {
  if (Status s = known_worker(req.worker_id()); !s.ok()) return s;
  uint32_t unit = 0;
  if (Status s = held_unit(req.lease_id(), req.worker_id(), &unit); !s.ok()) return s;
  heard_from(req.worker_id(), now_ms);
  prepare_->units[unit].expires_ms = now_ms + timing_.lease_ms;
  resp->set_expires_in_ms(timing_.lease_ms);
  return Status::OK;
}

Status JobState::plan_complete(const v1::CompleteUnitRequest& req, std::optional<Record>* record) {
  if (Status s = known_worker(req.worker_id()); !s.ok()) return s;
  uint32_t unit = 0;
  if (Status s = held_unit(req.lease_id(), req.worker_id(), &unit); !s.ok()) return s;
  if (prepare_->units[unit].done) return Status::OK;
  Record r;
  r.mutable_unit_completed()->set_lease_id(req.lease_id());
  r.mutable_unit_completed()->set_unit(unit);
  *record = r;
  return Status::OK;
}

std::optional<JobState::Record> JobState::plan_rendezvous_put(const v1::RendezvousPutRequest& req,
                                                              v1::RendezvousPutResponse* resp) const {
  if (const std::string* v = rendezvous_value(req.key())) {
    resp->set_value(*v);
    resp->set_first(false);
    return std::nullopt;
  }
  resp->set_value(req.value());
  resp->set_first(true);
  Record r;
  r.mutable_rendezvous_set()->set_key(req.key());
  r.mutable_rendezvous_set()->set_value(req.value());
  return r;
}

const std::string* JobState::rendezvous_value(const std::string& key) const {
  const auto it = rendezvous_.find(key);
  return it == rendezvous_.end() ? nullptr : &it->second;
}

void JobState::status(int64_t now_ms, v1::StatusResponse* resp) const {
  resp->set_job_id(job_id_);
  resp->set_uptime_ms(static_cast<uint64_t>(std::max<int64_t>(0, now_ms - started_ms_)));
  int64_t step = -1, consumed = 0, seq_len = 0, total_steps = 0, global_batch = 0;
  double tokens_per_s = 0;
  for (const auto& [id, w] : workers_) {
    v1::WorkerStatus* s = resp->add_workers();
    s->set_worker_id(id);
    *s->mutable_identity() = w.identity;
    const int64_t silent = now_ms - w.last_heard_ms;
    s->set_since_heartbeat_ms(static_cast<uint64_t>(std::max<int64_t>(0, silent)));
    s->set_step(w.step);
    s->set_consumed_samples(w.consumed_samples);
    s->set_tokens_per_s(w.tokens_per_s);
    const bool dead = silent > timing_.dead_after_ms;
    s->set_state(w.finished ? v1::WorkerStatus::STATE_FINISHED
                 : dead     ? v1::WorkerStatus::STATE_DEAD
                 : w.heard  ? v1::WorkerStatus::STATE_ALIVE
                            : v1::WorkerStatus::STATE_UNKNOWN);
    if (w.identity.role() != v1::WORKER_ROLE_TRAIN) continue;
    if (w.step > step) step = w.step, consumed = w.consumed_samples;
    if (!dead && !w.finished) tokens_per_s = std::max(tokens_per_s, w.tokens_per_s);
    seq_len = std::max(seq_len, w.run.seq_len());
    total_steps = std::max(total_steps, w.run.total_steps());
    global_batch = std::max(global_batch, w.run.global_batch());
  }
  resp->set_step(step);
  resp->set_consumed_samples(consumed);
  resp->set_tokens_per_s(tokens_per_s);
  if (train_tokens_ > 0) resp->set_epoch(static_cast<double>(consumed) * seq_len / train_tokens_);
  if (tokens_per_s > 0 && total_steps > step + 1)
    resp->set_eta_s(static_cast<double>(total_steps - step - 1) * global_batch * seq_len / tokens_per_s);
  if (committed_) *resp->mutable_committed() = *committed_;
  if (prepare_) {
    v1::PrepareStatus* p = resp->mutable_prepare();
    p->set_unit_count(static_cast<uint32_t>(prepare_->units.size() - 1));
    uint32_t done = 0, leased = 0;
    for (size_t u = 0; u + 1 < prepare_->units.size(); ++u) {
      done += prepare_->units[u].done;
      leased +=
          !prepare_->units[u].done && prepare_->units[u].lease_id && prepare_->units[u].expires_ms > now_ms;
    }
    p->set_units_done(done);
    p->set_units_leased(leased);
    p->set_manifest_written(prepare_->units.back().done);
  }
  resp->set_stop_requested(stop_requested());
  if (stop_requested()) resp->set_stop_reason(*stop_reason_);
}

std::vector<JobState::DeadWorker> JobState::newly_dead(int64_t now_ms) {
  std::vector<DeadWorker> out;
  for (auto& [id, w] : workers_) {
    if (w.finished || w.reported_dead || now_ms - w.last_heard_ms <= timing_.dead_after_ms) continue;
    w.reported_dead = true;
    out.push_back({fmt::format("{} has sent nothing for {:.1f} s", describe_worker(id),
                               (now_ms - w.last_heard_ms) / 1000.0),
                   w.identity.role() == v1::WORKER_ROLE_TRAIN});
  }
  return out;
}

}  // namespace kervan
