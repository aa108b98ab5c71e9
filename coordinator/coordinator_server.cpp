#include "coordinator/coordinator_server.h"

#include <google/protobuf/stubs/logging.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "coordinator/process_tuning.h"
#include "coordinator/rpc_calls.h"
#include "core/error.h"

namespace kervan {

namespace v1 = coordinator::v1;

namespace {

std::string read_pem(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) throw UserError(path + ": cannot read the TLS " + what + " file");
  std::stringstream s;
  s << in.rdbuf();
  if (s.str().find("-----BEGIN ") == std::string::npos)
    throw UserError(path + ": the TLS " + what + " file is not PEM (no -----BEGIN line)");
  return s.str();
}

std::shared_ptr<grpc::ServerCredentials> server_credentials(const TlsServerFiles& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  if (tls.key.empty()) throw UserError("--tls-cert " + tls.cert + " needs --tls-key");
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({read_pem(tls.key, "key"), read_pem(tls.cert, "certificate")});
  if (!tls.client_ca.empty()) {
    ssl.pem_root_certs = read_pem(tls.client_ca, "client CA");
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// "host:port" -> host part, for replacing port 0 with the bound port.
std::string host_of(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  return colon == std::string::npos ? listen : listen.substr(0, colon);
}

// Protobuf logs every request that does not parse (invalid UTF-8 in a string field, say); a
// client sending garbage must not be able to fill the coordinator's log, so those go to debug.
void protobuf_log_to_debug(google::protobuf::LogLevel level, const char* file, int line,
                           const std::string& message) {
  if (level >= google::protobuf::LOGLEVEL_FATAL)
    spdlog::critical("protobuf {}:{}: {}", file, line, message);
  else
    spdlog::debug("protobuf {}:{}: {}", file, line, message);
}

}  // namespace

CoordinatorServer::CoordinatorServer(const CoordinatorOptions& options, SharedSecret secret)
    : options_(options) {
  google::protobuf::SetLogHandler(protobuf_log_to_debug);
  tune_process_for_grpc();
  if (options_.listen.find(':') == std::string::npos)
    throw UserError("--listen " + options_.listen +
                    ": expected HOST:PORT (e.g. 127.0.0.1:7150, 0.0.0.0:7150)");
  {  // (gRPC takes a port above 65535 as "any port", silently)
    const std::string port_text = options_.listen.substr(options_.listen.rfind(':') + 1);
    const bool digits = !port_text.empty() && port_text.size() <= 5 &&
                        port_text.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(port_text) > 65535)
      throw UserError("--listen " + options_.listen + ": the port must be 0 to 65535 (0: any free port)");
  }
  // Checked before anything is written (the journal): unreadable or non-PEM TLS files.
  const std::shared_ptr<grpc::ServerCredentials> credentials = server_credentials(options_.tls);
  if (options_.journal.empty())
    throw UserError("the coordinator needs --journal FILE (its state survives it there)");
  if (options_.job_id.empty() || options_.job_id.size() > 256)
    throw UserError("--job must be 1 to 256 characters");
  catalog_ = std::make_unique<CorpusCatalog>(options_.corpora);

  const int64_t now = steady_now_ms();
  state_ = std::make_unique<JobState>(options_.job_id, options_.timing, catalog_->train_tokens(), now);
  v1::JournalHeader header;
  header.set_job_id(options_.job_id);
  header.set_corpus_fingerprint(catalog_->fingerprint());
  journal_ = std::make_unique<Journal>(
      options_.journal, header, [&](const Journal::Record& r) { state_->apply(r, now); },
      options_.journal_advice);
  if (journal_->replayed_records() > 0) {
    state_->restarted(steady_now_ms());
    spdlog::info("{}: replayed {} journal records", options_.journal, journal_->replayed_records());
  }
  int port = 0;
  try {
    service_ = std::make_unique<CoordinatorService>(*catalog_, std::move(secret), options_.job_id, *state_,
                                                    state_mutex_, *journal_);

    grpc::ServerBuilder builder;
    builder.AddListeningPort(options_.listen, credentials, &port);
    builder.RegisterService(service_.get());
    builder.SetMaxReceiveMessageSize(options_.max_request_bytes);
    // gRPC sets SO_REUSEPORT by default, which would let a second coordinator share the port.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    // Requests are small: no bandwidth probing (a PING and its timer per burst of requests).
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    // Nobody reads channelz; its per-call counters are atomics on every call.
    builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
    // No server-side timer per call for the client's deadline (gRPC's deadline filter; 7% of a
    // loaded coordinator's samples, its debug build walking the timer hash chains): every call is
    // answered at once or by the coordinator's own clocks (rendezvous waits, the journal), and a
    // client whose deadline passes cancels the call itself.
    builder.AddChannelArgument(GRPC_ARG_ENABLE_DEADLINE_CHECKS, 0);
    const int threads = options_.threads > 0
                            ? options_.threads
                            : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
    for (int t = 0; t < threads; ++t) queues_.push_back(builder.AddCompletionQueue());
    server_ = builder.BuildAndStart();
    if (!server_ || port == 0)
      throw UserError("cannot listen on " + options_.listen +
                      " (the port is in use, or the address is not one of this machine's" +
                      (options_.tls.enabled() ? ", or --tls-cert and --tls-key do not make a pair" : "") +
                      ")");
  } catch (...) {
    // A first start that cannot serve (the port in use, ...) leaves no journal behind: a journal
    // holding only its header would tie the file to this corpus for a start that never happened.
    const bool remove = journal_->created();
    service_.reset();
    journal_.reset();
    if (remove) ::unlink(options_.journal.c_str());
    throw;
  }
  address_ = host_of(options_.listen) + ":" + std::to_string(port);
  for (auto& queue : queues_) {
    service_->serve(queue.get());
    servers_.emplace_back([cq = queue.get()] {
      void* tag = nullptr;
      bool ok = false;
      while (cq->Next(&tag, &ok)) static_cast<CallTag*>(tag)->proceed(ok);
    });
  }
  monitor_ = std::thread([this] { monitor_loop(); });
}

CoordinatorServer::~CoordinatorServer() {
  {
    std::lock_guard lock(monitor_mutex_);
    stopping_ = true;
  }
  monitor_cv_.notify_all();
  if (monitor_.joinable()) monitor_.join();
  if (service_) service_->cancel_waits();
  // No new calls from here on; the serving threads finish those under way (a reply waiting for
  // the journal is answered from the journal's thread) or, after 2 s, gRPC cancels them.
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  journal_.reset();  // writes what is queued and answers its calls while the queues still run
  for (auto& queue : queues_) queue->Shutdown();
  for (std::thread& t : servers_) t.join();  // each drains its queue, freeing the calls
  server_.reset();
}

// Reports workers that stopped heartbeating (once each, with rank and host), asks the job to
// stop when told to, and ends rendezvous waits that ran out.
void CoordinatorServer::monitor_loop() {
  const auto tick =
      std::chrono::milliseconds(std::clamp<uint32_t>(options_.timing.dead_after_ms / 10, 20, 250));
  std::unique_lock lock(monitor_mutex_);
  while (!monitor_cv_.wait_for(lock, tick, [&] { return stopping_; })) {
    service_->expire_waits(std::chrono::steady_clock::now());
    std::lock_guard state_lock(state_mutex_);
    const std::vector<JobState::DeadWorker> dead_now = state_->newly_dead(steady_now_ms());
    // A whole job going silent at once is one event, not a thousand log lines.
    constexpr size_t kNamed = 10;
    for (size_t i = 0; i < std::min(dead_now.size(), kNamed); ++i)
      spdlog::warn("dead: {}", dead_now[i].description);
    if (dead_now.size() > kNamed)
      spdlog::warn("dead: {} more workers (kervan status lists them)", dead_now.size() - kNamed);
    for (const JobState::DeadWorker& dead : dead_now) {
      if (!options_.stop_on_dead_worker || !dead.trains || state_->stop_requested()) continue;
      Journal::Record record;
      if (state_->plan_stop("a worker died: " + dead.description, &record).ok())
        service_->commit_locked(record, nullptr);
    }
  }
}

}  // namespace kervan
