#pragma once
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/coordinator_service.h"
#include "coordinator/corpus_catalog.h"
#include "coordinator/job_state.h"
#include "coordinator/journal.h"
#include "coordinator/shared_secret.h"

namespace kervan {

// Optional TLS for the coordinator: the server's certificate chain and key (PEM files), and a CA
// that client certificates must chain to (then every client must present one).
struct TlsServerFiles {
  std::string cert, key, client_ca;
  bool enabled() const { return !cert.empty(); }
};

struct CoordinatorOptions {
  std::vector<CorpusSpec> corpora;
  std::string listen = "127.0.0.1:7150";  // loopback unless told otherwise; port 0: any free port
  std::string journal;
  // What a user can do when the journal belongs to another job or other corpora.
  std::string journal_advice = "give another --journal, or the --job and --corpus it was made with";
  std::string job_id = "default";
  JobState::Timing timing;
  bool stop_on_dead_worker = false;  // a dead training worker asks the job to stop
  TlsServerFiles tls;
  int max_request_bytes = 1 << 20;  // larger requests are refused (RESOURCE_EXHAUSTED)
  // Threads that serve calls, each with a completion queue of its own; 0: one per two cores (the
  // other half is left to the kernel's network stack and the workers' side of loopback).
  int threads = 0;
};

// The coordinator process's core, runnable in its own process (`kervan coordinator`) or on a
// background thread of rank 0 (parallel.coordinator = "embedded"): opens and verifies the
// corpora, replays the journal, listens, and watches worker liveness until destroyed.
class CoordinatorServer {
 public:
  // Every start-up failure (corpus, journal, a port in use) is a UserError naming it.
  CoordinatorServer(const CoordinatorOptions& options, SharedSecret secret);
  ~CoordinatorServer();  // stops serving (in-flight replies are answered UNAVAILABLE)
  CoordinatorServer(const CoordinatorServer&) = delete;
  CoordinatorServer& operator=(const CoordinatorServer&) = delete;

  // "HOST:PORT" as bound (the chosen port when the listen port was 0).
  const std::string& address() const { return address_; }
  const CorpusCatalog& catalog() const { return *catalog_; }

 private:
  void monitor_loop();

  CoordinatorOptions options_;
  std::unique_ptr<CorpusCatalog> catalog_;
  std::mutex state_mutex_;
  std::unique_ptr<JobState> state_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<CoordinatorService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> servers_;  // one per queue
  std::string address_;
  std::mutex monitor_mutex_;
  std::condition_variable monitor_cv_;
  bool stopping_ = false;
  std::thread monitor_;
};

}  // namespace kervan
