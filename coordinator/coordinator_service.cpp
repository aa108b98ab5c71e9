#include "coordinator/coordinator_service.h"

#include <fmt/format.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <spdlog/spdlog.h>
#include <xxhash.h>

#include "proto/protocol_version.h"

namespace kervan {

namespace v1 = coordinator::v1;
using grpc::StatusCode;

namespace {

constexpr size_t kMessageBytes = 1 << 20;  // token data per streamed message
constexpr size_t kMaxKeyBytes = 256, kMaxValueBytes = 64 << 10;
constexpr uint32_t kMaxWaitMs = 60'000;

template <class Msg>
bool parse(const grpc::ByteBuffer* in, Msg* msg) {
  grpc::ByteBuffer copy(*in);  // shares the slices; Deserialize consumes its argument
  return grpc::SerializationTraits<Msg>::Deserialize(&copy, msg).ok();
}

// A unary call being answered: finish() runs once, now or later from the journal's thread.
template <class Resp>
struct Reply {
  grpc::ServerUnaryReactor* reactor;
  grpc::ByteBuffer* out;
  Resp response;
  void finish(const grpc::Status& s) {
    if (s.ok()) {
      bool own = false;
      grpc::SerializationTraits<Resp>::Serialize(response, out, &own);
    }
    reactor->Finish(s);
  }
};

// Parses and checks a request, then hands it to `handle` with a Reply to finish.
template <class Req, class Resp, class Handle>
grpc::ServerUnaryReactor* unary(const CoordinatorService& service, grpc::CallbackServerContext* ctx,
                                const grpc::ByteBuffer* in, grpc::ByteBuffer* out, Handle&& handle) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  Req req;
  if (!parse(in, &req)) {
    reactor->Finish(grpc::Status(StatusCode::INVALID_ARGUMENT,
                                 fmt::format("the request is not a valid {}", Req::descriptor()->name())));
    return reactor;
  }
  if (grpc::Status s = service.check_header(req.header()); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  auto reply = std::make_shared<Reply<Resp>>(Reply<Resp>{reactor, out, {}});
  handle(req, reply);
  return reactor;
}

// Streams a FetchRequest's ranges from the catalog's memory maps as TokenData messages of up to
// kMessageBytes: many small ranges (a batch's windows) share one message, a long range is cut
// into pieces. Each piece is written around the mapped bytes (a static slice: no copy into a
// protobuf string), with their XXH3-64.
class FetchReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  FetchReactor(const CorpusCatalog::Split& split, v1::FetchRequest req)
      : split_(split), req_(std::move(req)) {
    next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(StatusCode::CANCELLED, "the client went away"));
    next();
  }
  void OnDone() override { delete this; }

 private:
  void next() {
    slices_.clear();
    size_t message_bytes = 0;
    while (range_ < static_cast<size_t>(req_.ranges_size()) && message_bytes < kMessageBytes) {
      const v1::TokenRange& r = req_.ranges(static_cast<int>(range_));
      if (done_ == r.length()) {
        ++range_;
        done_ = 0;
        continue;
      }
      const uint64_t offset = r.offset() + done_;
      const size_t n =
          static_cast<size_t>(std::min<uint64_t>(kMessageBytes - message_bytes, r.length() - done_));
      const char* data = static_cast<const char*>(split_.shards[r.shard()]->token_data()) + offset;
      add_piece(static_cast<uint32_t>(range_), offset, data, n);
      done_ += n;
      message_bytes += n;
    }
    if (slices_.empty()) return Finish(grpc::Status::OK);
    buffer_ = grpc::ByteBuffer(slices_.data(), slices_.size());
    StartWrite(&buffer_);
  }

  // TokenData.chunks (field 1) holding a TokenChunk in protobuf wire format: range (1), offset
  // (2), checksum (4), then the data (3) as a slice of its own.
  void add_piece(uint32_t range, uint64_t offset, const char* data, size_t n) {
    std::string chunk;
    const auto varint = [](std::string& s, uint64_t v) {
      while (v >= 0x80) s += static_cast<char>((v & 0x7f) | 0x80), v >>= 7;
      s += static_cast<char>(v);
    };
    chunk += static_cast<char>(1 << 3 | 0);
    varint(chunk, range);
    chunk += static_cast<char>(2 << 3 | 0);
    varint(chunk, offset);
    chunk += static_cast<char>(4 << 3 | 1);
    const uint64_t sum = XXH3_64bits(data, n);
    chunk.append(reinterpret_cast<const char*>(&sum), 8);  // fixed64, little-endian
    chunk += static_cast<char>(3 << 3 | 2);
    varint(chunk, n);
    std::string head(1, static_cast<char>(1 << 3 | 2));
    varint(head, chunk.size() + n);
    head += chunk;
    slices_.emplace_back(head.data(), head.size());  // copied into the slice
    slices_.emplace_back(data, n, grpc::Slice::STATIC_SLICE);
  }

  const CorpusCatalog::Split& split_;
  const v1::FetchRequest req_;
  size_t range_ = 0;
  uint64_t done_ = 0;
  std::vector<grpc::Slice> slices_;
  grpc::ByteBuffer buffer_;
};

// A finished stream that refuses the request.
class RefusedStream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit RefusedStream(const grpc::Status& s) { Finish(s); }
  void OnDone() override { delete this; }
};

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

grpc::ServerUnaryReactor* CoordinatorService::Register(Context* ctx, const ByteBuffer* in, ByteBuffer* out) {
  return unary<v1::RegisterRequest, v1::RegisterResponse>(
      *this, ctx, in, out, [&](const auto& req, auto reply) {
        std::lock_guard lock(mu_);
        JobState::Record record;
        if (grpc::Status s = state_.plan_register(req, &record); !s.ok()) return reply->finish(s);
        const uint64_t id = record.registered().worker_id();
        state_.fill_register_response(id,
                                      &reply->response);  // before commit: the position as of registration
        reply->response.set_server_protocol_minor(kProtocolMinor);
        spdlog::info("registered worker {}: {} rank {} of {} (dp {}/{}, tp {}/{}) on {} pid {}", id,
                     req.worker().role() == v1::WORKER_ROLE_TRAIN ? "train" : "prepare", req.worker().rank(),
                     req.worker().world_size(), req.worker().dp_rank(), req.worker().dp_size(),
                     req.worker().tp_rank(), req.worker().tp_size(), req.worker().host(), req.worker().pid());
        commit_locked(record, [reply] { reply->finish(grpc::Status::OK); });
      });
}

grpc::ServerUnaryReactor* CoordinatorService::GetManifest(Context* ctx, const ByteBuffer* in,
                                                          ByteBuffer* out) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  v1::ManifestRequest req;
  grpc::Status s = parse(in, &req) ? check_header(req.header())
                                   : grpc::Status(StatusCode::INVALID_ARGUMENT,
                                                  "the request is not a valid ManifestRequest");
  if (s.ok()) {  // the response was serialized once at start-up
    grpc::Slice slice(catalog_.manifest_bytes().data(), catalog_.manifest_bytes().size(),
                      grpc::Slice::STATIC_SLICE);
    *out = grpc::ByteBuffer(&slice, 1);
  }
  reactor->Finish(s);
  return reactor;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* CoordinatorService::FetchTokens(Context*, const ByteBuffer* in) {
  v1::FetchRequest req;
  if (!parse(in, &req))
    return new RefusedStream(
        grpc::Status(StatusCode::INVALID_ARGUMENT, "the request is not a valid FetchRequest"));
  if (grpc::Status s = check_header(req.header()); !s.ok()) return new RefusedStream(s);
  const CorpusCatalog::Split* split = catalog_.split(req.corpus(), req.split());
  if (!split)
    return new RefusedStream(
        grpc::Status(StatusCode::INVALID_ARGUMENT,
                     fmt::format("fetch: no split '{}' in corpus {}", req.split(), req.corpus())));
  const v1::ManifestResponse& limits = catalog_.manifest();
  if (static_cast<uint32_t>(req.ranges_size()) > limits.max_fetch_ranges())
    return new RefusedStream(grpc::Status(StatusCode::RESOURCE_EXHAUSTED,
                                          fmt::format("fetch: {} ranges, at most {} per request",
                                                      req.ranges_size(), limits.max_fetch_ranges())));
  uint64_t total = 0;
  for (const v1::TokenRange& r : req.ranges()) {
    if (r.shard() >= split->shards.size())
      return new RefusedStream(
          grpc::Status(StatusCode::INVALID_ARGUMENT,
                       fmt::format("fetch: no shard {} in split '{}'", r.shard(), req.split())));
    const TokenShard& shard = *split->shards[r.shard()];
    const uint64_t size = shard.token_count() * shard.token_bytes();
    if (r.offset() > size || r.length() > size - r.offset())
      return new RefusedStream(
          grpc::Status(StatusCode::INVALID_ARGUMENT,
                       fmt::format("fetch: bytes [{}, +{}) are outside shard {} ({} token bytes)", r.offset(),
                                   r.length(), r.shard(), size)));
    total += r.length();
  }
  if (total > limits.max_fetch_bytes())
    return new RefusedStream(grpc::Status(
        StatusCode::RESOURCE_EXHAUSTED,
        fmt::format("fetch: {} bytes asked for, at most {} per request", total, limits.max_fetch_bytes())));
  return new FetchReactor(*split, std::move(req));
}

grpc::ServerUnaryReactor* CoordinatorService::Heartbeat(Context* ctx, const ByteBuffer* in, ByteBuffer* out) {
  return unary<v1::HeartbeatRequest, v1::HeartbeatResponse>(
      *this, ctx, in, out, [&](const auto& req, auto reply) {
        grpc::Status s;
        {
          std::lock_guard lock(mu_);
          s = state_.heartbeat(req, steady_now_ms(), &reply->response);
        }
        reply->finish(s);
      });
}

grpc::ServerUnaryReactor* CoordinatorService::CommitPosition(Context* ctx, const ByteBuffer* in,
                                                             ByteBuffer* out) {
  return unary<v1::CommitPositionRequest, v1::CommitPositionResponse>(
      *this, ctx, in, out, [&](const auto& req, auto reply) {
        std::lock_guard lock(mu_);
        JobState::Record record;
        if (grpc::Status s = state_.plan_commit(req, &record); !s.ok()) return reply->finish(s);
        commit_locked(record, [reply] { reply->finish(grpc::Status::OK); });
      });
}

grpc::ServerUnaryReactor* CoordinatorService::Stop(Context* ctx, const ByteBuffer* in, ByteBuffer* out) {
  return unary<v1::StopRequest, v1::StopResponse>(*this, ctx, in, out, [&](const auto& req, auto reply) {
    std::lock_guard lock(mu_);
    JobState::Record record;
    if (grpc::Status s = state_.plan_stop(req.reason(), &record); !s.ok()) return reply->finish(s);
    spdlog::warn("stop requested: {}", record.stop_requested().reason());
    commit_locked(record, [reply] { reply->finish(grpc::Status::OK); });
  });
}

grpc::ServerUnaryReactor* CoordinatorService::BeginPrepare(Context* ctx, const ByteBuffer* in,
                                                           ByteBuffer* out) {
  return unary<v1::BeginPrepareRequest, v1::BeginPrepareResponse>(
      *this, ctx, in, out, [&](const auto& req, auto reply) {
        std::lock_guard lock(mu_);
        std::optional<JobState::Record> record;
        if (grpc::Status s = state_.plan_begin_prepare(req, &record); !s.ok()) return reply->finish(s);
        if (!record) return reply->finish(grpc::Status::OK);
        spdlog::info("prepare begun: {} work units (plan {:016x})", req.unit_count(), req.plan_fingerprint());
        commit_locked(*record, [reply] { reply->finish(grpc::Status::OK); });
      });
}

grpc::ServerUnaryReactor* CoordinatorService::LeaseUnit(Context* ctx, const ByteBuffer* in, ByteBuffer* out) {
  return unary<v1::LeaseRequest, v1::LeaseResponse>(*this, ctx, in, out, [&](const auto& req, auto reply) {
    std::lock_guard lock(mu_);
    std::optional<JobState::Record> record;
    if (grpc::Status s = state_.plan_lease(req, steady_now_ms(), &record, &reply->response); !s.ok())
      return reply->finish(s);
    if (!record) return reply->finish(grpc::Status::OK);
    commit_locked(*record, [reply] { reply->finish(grpc::Status::OK); });
  });
}

grpc::ServerUnaryReactor* CoordinatorService::RenewLease(Context* ctx, const ByteBuffer* in,
                                                         ByteBuffer* out) {
  return unary<v1::RenewLeaseRequest, v1::RenewLeaseResponse>(
      *this, ctx, in, out, [&](const auto& req, auto reply) {
        grpc::Status s;
        {
          std::lock_guard lock(mu_);
          s = state_.renew_lease(req, steady_now_ms(), &reply->response);
        }
        reply->finish(s);
      });
}

grpc::ServerUnaryReactor* CoordinatorService::CompleteUnit(Context* ctx, const ByteBuffer* in,
                                                           ByteBuffer* out) {
  return unary<v1::CompleteUnitRequest, v1::CompleteUnitResponse>(
      *this, ctx, in, out, [&](const auto& req, auto reply) {
        std::lock_guard lock(mu_);
        std::optional<JobState::Record> record;
        if (grpc::Status s = state_.plan_complete(req, &record); !s.ok()) return reply->finish(s);
        if (!record) return reply->finish(grpc::Status::OK);
        commit_locked(*record, [reply] { reply->finish(grpc::Status::OK); });
      });
}

// A put is applied (and its waiters answered) only once its record is on disk, so nobody sees a
// value that a crash could replace. Two racing first puts are both journaled; the first applied
// wins, in the journal's order, exactly as a replay applies them.
grpc::ServerUnaryReactor* CoordinatorService::RendezvousPut(Context* ctx, const ByteBuffer* in,
                                                            ByteBuffer* out) {
  return unary<v1::RendezvousPutRequest, v1::RendezvousPutResponse>(
      *this, ctx, in, out, [&](const auto& req, auto reply) {
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
      });
}

grpc::ServerUnaryReactor* CoordinatorService::RendezvousGet(Context* ctx, const ByteBuffer* in,
                                                            ByteBuffer* out) {
  return unary<v1::RendezvousGetRequest, v1::RendezvousGetResponse>(
      *this, ctx, in, out, [&](const auto& req, auto reply) {
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
      });
}

grpc::ServerUnaryReactor* CoordinatorService::Status(Context* ctx, const ByteBuffer* in, ByteBuffer* out) {
  return unary<v1::StatusRequest, v1::StatusResponse>(*this, ctx, in, out, [&](const auto&, auto reply) {
    {
      std::lock_guard lock(mu_);
      state_.status(steady_now_ms(), &reply->response);
    }
    reply->finish(grpc::Status::OK);
  });
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
