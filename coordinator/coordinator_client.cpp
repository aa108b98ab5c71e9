#include "coordinator/coordinator_client.h"

#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "coordinator/process_tuning.h"
#include "core/xxh3_inline.h"
#include "proto/protocol_version.h"

namespace kervan {

namespace v1 = coordinator::v1;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kCallDeadline = std::chrono::seconds(30);    // one attempt of a unary call
constexpr auto kFetchDeadline = std::chrono::seconds(300);  // one attempt of a fetch stream
constexpr int kMaxChecksumFailures = 3;

std::string read_env_file(const char* var) {
  const char* path = std::getenv(var);
  if (!path || !*path) return "";
  std::ifstream in(path);
  if (!in) throw UserError(std::string(path) + " (" + var + "): cannot read the file");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool transient(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

}  // namespace

std::string status_code_name(grpc::StatusCode code) {
  static const char* names[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const auto i = static_cast<size_t>(code);
  return i < std::size(names) ? names[i] : "code " + std::to_string(i);
}

std::shared_ptr<grpc::Channel> coordinator_channel(const std::string& address, grpc::ChannelArguments args) {
  args.SetMaxReceiveMessageSize(256 << 20);  // a manifest of a very large corpus
  // Reconnect quickly after a coordinator restart (gRPC's default back-off grows to 120 s).
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  // Nobody reads channelz; its per-call counters are atomics on every call.
  args.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
  // No retry filter: it keeps every call's sent messages for a replay and runs each call as an
  // attempt of its own (10% of a simulated worker's CPU per RPC, bench/RESULTS.md).
  // CoordinatorClient::call retries what gRPC's transparent retries would (UNAVAILABLE, with
  // back-off), and the benchmark's registrations wait for the connection (wait_for_ready).
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (const std::string ca = read_env_file("KERVAN_TLS_CA"); !ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca;
    ssl.pem_private_key = read_env_file("KERVAN_TLS_KEY");
    ssl.pem_cert_chain = read_env_file("KERVAN_TLS_CERT");
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(address, creds, args);
}

CoordinatorClient::CoordinatorClient(ClientOptions options, SharedSecret secret)
    : options_(std::move(options)), secret_(std::move(secret)) {
  tune_process_for_grpc();
  if (options_.address.empty() || options_.address.find(':') == std::string::npos)
    throw UserError("coordinator address '" + options_.address + "': expected HOST:PORT");
  {  // (gRPC takes port 99999 as 99999 mod 65536, another port, silently)
    const std::string port = options_.address.substr(options_.address.rfind(':') + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535)
      throw UserError("coordinator address '" + options_.address + "': the port must be 1 to 65535");
  }
  channel_ = coordinator_channel(options_.address);
  stub_ = v1::Coordinator::NewStub(channel_);
}

v1::RequestHeader CoordinatorClient::header() const {
  v1::RequestHeader h;
  h.set_protocol_major(kProtocolMajor);
  h.set_protocol_minor(kProtocolMinor);
  h.set_job_id(options_.job_id);
  h.set_token(secret_.token());
  return h;
}

void CoordinatorClient::call(const char* method,
                             const std::function<grpc::Status(grpc::ClientContext&)>& attempt) {
  const Clock::time_point start = Clock::now();
  const auto give_up = start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(options_.retry_timeout_s));
  auto backoff = std::chrono::milliseconds(100);
  std::minstd_rand jitter(static_cast<unsigned>(start.time_since_epoch().count()));
  bool warned = false;
  for (;;) {
    grpc::ClientContext ctx;
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(give_up - Clock::now());
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::min<std::chrono::milliseconds>(kCallDeadline, std::max(remaining, backoff)));
    const grpc::Status s = attempt(ctx);
    if (s.ok()) {
      if (warned) spdlog::info("the coordinator at {} answers again", options_.address);
      return;
    }
    if (!transient(s.error_code()))
      throw CoordinatorRefusal(
          s.error_code(), fmt::format("the coordinator at {} refused {}: {}: {}", options_.address, method,
                                      status_code_name(s.error_code()), s.error_message()));
    if (Clock::now() >= give_up)
      throw EnvironmentError(method, "the coordinator at " + options_.address,
                             fmt::format("no answer for {} s ({}; last error: {})", options_.retry_timeout_s,
                                         options_.timeout_setting, s.error_message()));
    if (!warned && Clock::now() - start > std::chrono::seconds(2)) {
      spdlog::warn("the coordinator at {} does not answer ({}); retrying for up to {:.0f} s",
                   options_.address, s.error_message(), options_.retry_timeout_s);
      warned = true;
    }
    std::this_thread::sleep_for(backoff + std::chrono::milliseconds(jitter() % (backoff.count() / 2 + 1)));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

v1::RegisterResponse CoordinatorClient::register_worker(const v1::WorkerIdentity& worker,
                                                        const v1::RunShape& run) {
  v1::RegisterRequest req;
  *req.mutable_header() = header();
  *req.mutable_worker() = worker;
  *req.mutable_run() = run;
  v1::RegisterResponse resp;
  call("Register", [&](grpc::ClientContext& ctx) { return stub_->Register(&ctx, req, &resp); });
  return resp;
}

v1::ManifestResponse CoordinatorClient::manifest() {
  v1::ManifestRequest req;
  *req.mutable_header() = header();
  v1::ManifestResponse resp;
  call("GetManifest", [&](grpc::ClientContext& ctx) { return stub_->GetManifest(&ctx, req, &resp); });
  return resp;
}

void CoordinatorClient::fetch(v1::FetchRequest req,
                              const std::function<void(const v1::TokenChunk&)>& on_piece) {
  *req.mutable_header() = header();
  uint64_t asked = 0;
  for (const v1::TokenRange& r : req.ranges()) asked += r.length();
  int bad_checksums = 0;
  call("FetchTokens", [&](grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + kFetchDeadline);
    std::unique_ptr<grpc::ClientReader<v1::TokenData>> reader = stub_->FetchTokens(&ctx, req);
    // Parsed into one message per thread, whose pieces and buffers protobuf reuses from fetch to
    // fetch (a batch's fetch is 16-odd pieces: as many allocations and frees saved).
    thread_local v1::TokenData message;
    // Once every byte asked for has come, the status is all that follows: Finish takes it
    // without the Read that would only report the end of the stream.
    uint64_t left = asked;
    while (left > 0 && reader->Read(&message)) {
      for (const v1::TokenChunk& piece : message.chunks()) {
        left -= std::min<uint64_t>(left, piece.data().size());
        if (piece.range() >= static_cast<uint32_t>(req.ranges_size()) ||
            XXH3_64bits(piece.data().data(), piece.data().size()) != piece.checksum()) {
          if (++bad_checksums >= kMaxChecksumFailures)
            throw EnvironmentError("FetchTokens", "the coordinator at " + options_.address,
                                   fmt::format("token data of corpus {} '{}' failed its checksum {} times",
                                               req.corpus(), req.split(), bad_checksums));
          ctx.TryCancel();
          reader->Finish();
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "a piece failed its checksum; fetching again");
        }
        on_piece(piece);
      }
    }
    return reader->Finish();
  });
}

v1::HeartbeatResponse CoordinatorClient::heartbeat(v1::HeartbeatRequest req) {
  *req.mutable_header() = header();
  v1::HeartbeatResponse resp;
  call("Heartbeat", [&](grpc::ClientContext& ctx) { return stub_->Heartbeat(&ctx, req, &resp); });
  return resp;
}

void CoordinatorClient::commit_position(uint64_t worker_id, const v1::DataPosition& position) {
  v1::CommitPositionRequest req;
  *req.mutable_header() = header();
  req.set_worker_id(worker_id);
  *req.mutable_position() = position;
  v1::CommitPositionResponse resp;
  call("CommitPosition", [&](grpc::ClientContext& ctx) { return stub_->CommitPosition(&ctx, req, &resp); });
}

void CoordinatorClient::stop(const std::string& reason) {
  v1::StopRequest req;
  *req.mutable_header() = header();
  req.set_reason(reason);
  v1::StopResponse resp;
  call("Stop", [&](grpc::ClientContext& ctx) { return stub_->Stop(&ctx, req, &resp); });
}

void CoordinatorClient::begin_prepare(uint64_t worker_id, uint64_t plan_fingerprint, uint32_t unit_count) {
  v1::BeginPrepareRequest req;
  *req.mutable_header() = header();
  req.set_worker_id(worker_id);
  req.set_plan_fingerprint(plan_fingerprint);
  req.set_unit_count(unit_count);
  v1::BeginPrepareResponse resp;
  call("BeginPrepare", [&](grpc::ClientContext& ctx) { return stub_->BeginPrepare(&ctx, req, &resp); });
}

v1::LeaseResponse CoordinatorClient::lease_unit(uint64_t worker_id) {
  v1::LeaseRequest req;
  *req.mutable_header() = header();
  req.set_worker_id(worker_id);
  v1::LeaseResponse resp;
  call("LeaseUnit", [&](grpc::ClientContext& ctx) { return stub_->LeaseUnit(&ctx, req, &resp); });
  return resp;
}

v1::RenewLeaseResponse CoordinatorClient::renew_lease(uint64_t worker_id, uint64_t lease_id) {
  v1::RenewLeaseRequest req;
  *req.mutable_header() = header();
  req.set_worker_id(worker_id);
  req.set_lease_id(lease_id);
  v1::RenewLeaseResponse resp;
  call("RenewLease", [&](grpc::ClientContext& ctx) { return stub_->RenewLease(&ctx, req, &resp); });
  return resp;
}

void CoordinatorClient::complete_unit(uint64_t worker_id, uint64_t lease_id) {
  v1::CompleteUnitRequest req;
  *req.mutable_header() = header();
  req.set_worker_id(worker_id);
  req.set_lease_id(lease_id);
  v1::CompleteUnitResponse resp;
  call("CompleteUnit", [&](grpc::ClientContext& ctx) { return stub_->CompleteUnit(&ctx, req, &resp); });
}

v1::RendezvousPutResponse CoordinatorClient::rendezvous_put(const std::string& key,
                                                            const std::string& value) {
  v1::RendezvousPutRequest req;
  *req.mutable_header() = header();
  req.set_key(key);
  req.set_value(value);
  v1::RendezvousPutResponse resp;
  call("RendezvousPut", [&](grpc::ClientContext& ctx) { return stub_->RendezvousPut(&ctx, req, &resp); });
  return resp;
}

v1::RendezvousGetResponse CoordinatorClient::rendezvous_get(const std::string& key, uint32_t wait_ms) {
  v1::RendezvousGetRequest req;
  *req.mutable_header() = header();
  req.set_key(key);
  req.set_wait_ms(wait_ms);
  v1::RendezvousGetResponse resp;
  call("RendezvousGet", [&](grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(wait_ms) + kCallDeadline);
    return stub_->RendezvousGet(&ctx, req, &resp);
  });
  return resp;
}

v1::StatusResponse CoordinatorClient::status() {
  v1::StatusRequest req;
  *req.mutable_header() = header();
  v1::StatusResponse resp;
  call("Status", [&](grpc::ClientContext& ctx) { return stub_->Status(&ctx, req, &resp); });
  return resp;
}

}  // namespace kervan
