#include "coordinator/coordinator_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "coordinator/fetch_call.h"
#include "proto/protocol_version.h"

namespace kervan {

namespace v1 = coordinator::v1;
using grpc::StatusCode;

namespace {

constexpr size_t kMaxKeyBytes = 256, kMaxValueBytes = 64 << 10;
constexpr uint32_t kMaxWaitMs = 60'000;

}  // namespace

int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct CoordinatorService::Waiter {
  std::string key;
  std::chrono::steady_clock::time_point deadline;
  std::shared_ptr<Reply<v1::RendezvousGetResponse>> reply;
};

CoordinatorService::CoordinatorService(const CorpusCatalog& catalog, SharedSecret secret, std::string job_id,
                                       JobState& state, std::mutex& state_mutex, Journal& journal)
    : catalog_(catalog),
      secret_(std::move(secret)),
      job_id_(std::move(job_id)),
      state_(state),
      mu_(state_mutex),
      journal_(journal) {}

CoordinatorService::~CoordinatorService() {
  cancel_waits();
}

void CoordinatorService::serve(grpc::ServerCompletionQueue* cq) {
  using S = CoordinatorService;
  // Unary methods: the request type, the response type, gRPC's request function, the handler.
#define KERVAN_UNARY(Method, Req, Resp, handler)                         \
  UnaryCall<S, v1::Req, v1::Resp>::start(*this, cq, &S::Request##Method, \
                                         [this](const v1::Req& req, ReplyPtr<v1::Resp> r) { handler; })
  KERVAN_UNARY(Register, RegisterRequest, RegisterResponse, register_worker(req, std::move(r)));
  KERVAN_UNARY(GetManifest, ManifestRequest, ManifestResponse, {
    (void)req;  // the response was serialized once at start-up
    grpc::Slice slice(catalog_.manifest_bytes().data(), catalog_.manifest_bytes().size(),
                      grpc::Slice::STATIC_SLICE);
    r->finish_raw(grpc::ByteBuffer(&slice, 1));
  });
  KERVAN_UNARY(Heartbeat, HeartbeatRequest, HeartbeatResponse, heartbeat(req, std::move(r)));
  KERVAN_UNARY(CommitPosition, CommitPositionRequest, CommitPositionResponse,
               commit_position(req, std::move(r)));
  KERVAN_UNARY(Stop, StopRequest, StopResponse, stop(req, std::move(r)));
  KERVAN_UNARY(BeginPrepare, BeginPrepareRequest, BeginPrepareResponse, begin_prepare(req, std::move(r)));
  KERVAN_UNARY(LeaseUnit, LeaseRequest, LeaseResponse, lease_unit(req, std::move(r)));
  KERVAN_UNARY(RenewLease, RenewLeaseRequest, RenewLeaseResponse, renew_lease(req, std::move(r)));
  KERVAN_UNARY(CompleteUnit, CompleteUnitRequest, CompleteUnitResponse, complete_unit(req, std::move(r)));
  KERVAN_UNARY(RendezvousPut, RendezvousPutRequest, RendezvousPutResponse, rendezvous_put(req, std::move(r)));
  KERVAN_UNARY(RendezvousGet, RendezvousGetRequest, RendezvousGetResponse, rendezvous_get(req, std::move(r)));
  KERVAN_UNARY(Status, StatusRequest, StatusResponse, {
    (void)req;
    status(std::move(r));
  });
#undef KERVAN_UNARY
  FetchCall::start(*this, catalog_, cq);
}

grpc::Status CoordinatorService::check_header(const v1::RequestHeader& h) const {
  if (!secret_.matches(h.token()))
    return grpc::Status(StatusCode::UNAUTHENTICATED,
                        h.token().empty()
                            ? "the request carries no token (set KERVAN_TOKEN or KERVAN_TOKEN_FILE)"
                            : "wrong token (not this job's KERVAN_TOKEN)");
  if (h.protocol_major() != kProtocolMajor)
    return grpc::Status(
        StatusCode::FAILED_PRECONDITION,
        fmt::format("the client speaks coordinator protocol {}.{}, this coordinator {}.{}: use the same "
                    "major version on both sides",
                    h.protocol_major(), h.protocol_minor(), kProtocolMajor, kProtocolMinor));
  if (h.job_id() != job_id_)
    return grpc::Status(
        StatusCode::PERMISSION_DENIED,
        fmt::format("the request is for job '{}'; this coordinator serves job '{}'", h.job_id(), job_id_));
  return grpc::Status::OK;
}

void CoordinatorService::commit_locked(const JobState::Record& record, std::function<void()> reply) {
  state_.apply(record, steady_now_ms());
  journal_.append(record, std::move(reply));
}

void CoordinatorService::register_worker(const v1::RegisterRequest& req,
                                         ReplyPtr<v1::RegisterResponse> reply) {
  std::lock_guard lock(mu_);
  JobState::Record record;
  if (grpc::Status s = state_.plan_register(req, &record); !s.ok()) return reply->finish(s);
  const uint64_t id = record.registered().worker_id();
  state_.fill_register_response(id, &reply->response);  // before commit: the position as of registration
  reply->response.set_server_protocol_minor(kProtocolMinor);
  spdlog::info("registered worker {}: {} rank {} of {} (dp {}/{}, tp {}/{}) on {} pid {}", id,
               req.worker().role() == v1::WORKER_ROLE_TRAIN ? "train" : "prepare", req.worker().rank(),
               req.worker().world_size(), req.worker().dp_rank(), req.worker().dp_size(),
               req.worker().tp_rank(), req.worker().tp_size(), req.worker().host(), req.worker().pid());
  commit_locked(record, [reply] { reply->finish(grpc::Status::OK); });
}

void CoordinatorService::heartbeat(const v1::HeartbeatRequest& req, ReplyPtr<v1::HeartbeatResponse> reply) {
  grpc::Status s;
  {
    std::lock_guard lock(mu_);
    s = state_.heartbeat(req, steady_now_ms(), &reply->response);
  }
  reply->finish(s);
}

void CoordinatorService::commit_position(const v1::CommitPositionRequest& req,
                                         ReplyPtr<v1::CommitPositionResponse> reply) {
  std::lock_guard lock(mu_);
  JobState::Record record;
  if (grpc::Status s = state_.plan_commit(req, &record); !s.ok()) return reply->finish(s);
  commit_locked(record, [reply] { reply->finish(grpc::Status::OK); });
}

void CoordinatorService::stop(const v1::StopRequest& req, ReplyPtr<v1::StopResponse> reply) {
  std::lock_guard lock(mu_);
  JobState::Record record;
  if (grpc::Status s = state_.plan_stop(req.reason(), &record); !s.ok()) return reply->finish(s);
  spdlog::warn("stop requested: {}", record.stop_requested().reason());
  commit_locked(record, [reply] { reply->finish(grpc::Status::OK); });
}

void CoordinatorService::begin_prepare(const v1::BeginPrepareRequest& req,
                                       ReplyPtr<v1::BeginPrepareResponse> reply) {
  std::lock_guard lock(mu_);
  std::optional<JobState::Record> record;
  if (grpc::Status s = state_.plan_begin_prepare(req, &record); !s.ok()) return reply->finish(s);
  if (!record) return reply->finish(grpc::Status::OK);
  spdlog::info("prepare begun: {} work units (plan {:016x})", req.unit_count(), req.plan_fingerprint());
  commit_locked(*record, [reply] { reply->finish(grpc::Status::OK); });
}

void CoordinatorService::lease_unit(const v1::LeaseRequest& req, ReplyPtr<v1::LeaseResponse> reply) {
  std::lock_guard lock(mu_);
  std::optional<JobState::Record> record;
  if (grpc::Status s = state_.plan_lease(req, steady_now_ms(), &record, &reply->response); !s.ok())
    return reply->finish(s);
  if (!record) return reply->finish(grpc::Status::OK);
  commit_locked(*record, [reply] { reply->finish(grpc::Status::OK); });
}

void CoordinatorService::renew_lease(const v1::RenewLeaseRequest& req,
                                     ReplyPtr<v1::RenewLeaseResponse> reply) {
  grpc::Status s;
  {
    std::lock_guard lock(mu_);
    s = state_.renew_lease(req, steady_now_ms(), &reply->response);
  }
  reply->finish(s);
}

void CoordinatorService::complete_unit(const v1::CompleteUnitRequest& req,
                                       ReplyPtr<v1::CompleteUnitResponse> reply) {
  std::lock_guard lock(mu_);
  std::optional<JobState::Record> record;
  if (grpc::Status s = state_.plan_complete(req, &record); !s.ok()) return reply->finish(s);
  if (!record) return reply->finish(grpc::Status::OK);
  commit_locked(*record, [reply] { reply->finish(grpc::Status::OK); });
}

// A put is applied (and its waiters answered) only once its record is on disk, so nobody sees a
// value that a crash could replace. Two racing first puts are both journaled; the first applied
// wins, in the journal's order, exactly as a replay applies them.
void CoordinatorService::rendezvous_put(const v1::RendezvousPutRequest& req,
                                        ReplyPtr<v1::RendezvousPutResponse> reply) {
  if (req.key().empty() || req.key().size() > kMaxKeyBytes)
    return reply->finish(
        grpc::Status(StatusCode::INVALID_ARGUMENT, "rendezvous: the key must be 1 to 256 bytes"));
  if (req.value().size() > kMaxValueBytes)
    return reply->finish(
        grpc::Status(StatusCode::RESOURCE_EXHAUSTED, "rendezvous: values are at most 64 KiB"));
  std::lock_guard lock(mu_);
  std::optional<JobState::Record> record = state_.plan_rendezvous_put(req, &reply->response);
  if (!record) return reply->finish(grpc::Status::OK);
  journal_.append(*record, [this, reply, record = *record] {
    {
      std::lock_guard lock(mu_);
      const bool first = state_.rendezvous_value(record.rendezvous_set().key()) == nullptr;
      if (first) state_.apply(record, steady_now_ms());
      const std::string& value = *state_.rendezvous_value(record.rendezvous_set().key());
      reply->response.set_value(value);
      reply->response.set_first(first);
      if (first) wake_waiters_locked(record.rendezvous_set().key(), value);
    }
    reply->finish(grpc::Status::OK);
  });
}

void CoordinatorService::rendezvous_get(const v1::RendezvousGetRequest& req,
                                        ReplyPtr<v1::RendezvousGetResponse> reply) {
  if (req.key().empty() || req.key().size() > kMaxKeyBytes)
    return reply->finish(
        grpc::Status(StatusCode::INVALID_ARGUMENT, "rendezvous: the key must be 1 to 256 bytes"));
  std::lock_guard lock(mu_);
  if (const std::string* v = state_.rendezvous_value(req.key())) {
    reply->response.set_found(true);
    reply->response.set_value(*v);
    return reply->finish(grpc::Status::OK);
  }
  if (req.wait_ms() == 0) return reply->finish(grpc::Status::OK);
  const auto wait = std::chrono::milliseconds(std::min(req.wait_ms(), kMaxWaitMs));
  waiters_.push_back(
      std::make_shared<Waiter>(Waiter{req.key(), std::chrono::steady_clock::now() + wait, reply}));
}

void CoordinatorService::status(ReplyPtr<v1::StatusResponse> reply) {
  {
    std::lock_guard lock(mu_);
    state_.status(steady_now_ms(), &reply->response);
  }
  reply->finish(grpc::Status::OK);
}

void CoordinatorService::wake_waiters_locked(const std::string& key, const std::string& value) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if ((*it)->key != key) {
      ++it;
      continue;
    }
    (*it)->reply->response.set_found(true);
    (*it)->reply->response.set_value(value);
    (*it)->reply->finish(grpc::Status::OK);
    it = waiters_.erase(it);
  }
}

void CoordinatorService::expire_waits(std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mu_);
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if ((*it)->deadline > now) {
      ++it;
      continue;
    }
    (*it)->reply->finish(grpc::Status::OK);  // found = false
    it = waiters_.erase(it);
  }
}

void CoordinatorService::cancel_waits() {
  std::lock_guard lock(mu_);
  for (auto& w : waiters_)
    w->reply->finish(grpc::Status(StatusCode::UNAVAILABLE, "the coordinator is shutting down"));
  waiters_.clear();
}

}  // namespace kervan
