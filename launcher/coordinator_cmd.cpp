#include "launcher/coordinator_cmd.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <filesystem>

#include "launcher/cli_checks.h"
#include "core/error.h"
#include "core/paths.h"
#include "datasets/format/atomic_file.h"

namespace kervan {

CoordinatorCommand::CoordinatorCommand(CLI::App& app) {
  cmd_ = app.add_subcommand("coordinator", "Serve corpora, leases and job state to workers over gRPC");
  cmd_->add_option(
      "--corpus", corpora_,
      "A corpus folder to serve (NAME=DIR names it; default: the folder's name); repeatable. None: "
      "the coordinator of a distributed prepare only leases work units");
  cmd_->add_option("--listen", options_.listen,
                   "HOST:PORT to listen on (127.0.0.1:7150; port 0: any free port)");
  cmd_->add_option("--journal", options_.journal, "The journal file: the job's state, replayed on restart")
      ->required();
  cmd_->add_option("--job", options_.job_id, "The job id every request must name (default)");
  cmd_->add_option("--token-file", token_file_,
                   "File with the shared secret (mode 600); default $KERVAN_TOKEN");
  cmd_->add_option("--address-file", address_file_, "Write the bound HOST:PORT here once listening");
  cmd_->add_option("--heartbeat-ms", heartbeat_ms_, "How often workers heartbeat (1000)")
      ->check(CLI::Range(10, 600000));
  cmd_->add_option("--dead-after-s", dead_after_s_, "A worker silent this long is reported dead (10)")
      ->check(FiniteRange(0.05, 86400.0));
  cmd_->add_option("--lease-s", lease_s_,
                   "A work-unit lease not renewed this long goes to another worker (30)")
      ->check(FiniteRange(0.05, 86400.0));
  cmd_->add_option("--threads", options_.threads,
                   "Threads that serve calls (0: one per two cores; a coordinator with more cores than "
                   "its job needs can leave them to the rest of the machine)")
      ->check(CLI::Range(0, 1024));
  cmd_->add_flag("--stop-on-dead-worker", options_.stop_on_dead_worker,
                 "Ask the job to stop (checkpoint and exit) when a training worker dies");
  cmd_->add_option("--tls-cert", options_.tls.cert, "TLS: the server's certificate chain (PEM)");
  cmd_->add_option("--tls-key", options_.tls.key, "TLS: the server's private key (PEM)");
  cmd_->add_option("--tls-client-ca", options_.tls.client_ca,
                   "TLS: require client certificates from this CA (PEM)");
}

namespace {

// --address-file is rewritten at every start, so it may exist, but only as what kervan writes there
// (one line, HOST:PORT): any other file (a config, the journal, a corpus file) is the user's.
void check_address_file_contents(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return;
  if (!fs::is_regular_file(path, ec))
    throw UserError(path + ": --address-file exists and is not a file");
  std::string text;
  if (fs::file_size(path, ec) <= 1024) {
    std::ifstream in(path);
    std::getline(in, text, '\0');
  }
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const size_t colon = text.rfind(':');
  const bool address = !text.empty() && text.find_first_of("\n \t") == std::string::npos &&
                       colon != std::string::npos && colon + 1 < text.size() &&
                       text.find_first_not_of("0123456789", colon + 1) == std::string::npos;
  if (!address)
    throw UserError(path +
                    ": --address-file exists and is not an address file kervan wrote (one line, HOST:PORT); "
                    "kervan does not overwrite it: choose another path");
}

}  // namespace

void CoordinatorCommand::check_address_file(const CoordinatorOptions& options) const {
  check_address_file_contents(address_file_);
  std::vector<std::string> inputs{options.journal};
  if (!token_file_.empty()) inputs.push_back(token_file_);
  for (const CorpusSpec& c : options.corpora) inputs.push_back(c.dir);
  refuse_output_over_input(address_file_, "--address-file", inputs);
}

int CoordinatorCommand::run() const {
  CoordinatorOptions options = options_;
  for (const std::string& c : corpora_) options.corpora.push_back(CorpusSpec::parse(c));
  options.timing.heartbeat_interval_ms = static_cast<uint32_t>(heartbeat_ms_);
  options.timing.dead_after_ms = static_cast<uint32_t>(dead_after_s_ * 1000);
  options.timing.lease_ms = static_cast<uint32_t>(lease_s_ * 1000);
  SharedSecret secret = SharedSecret::require(token_file_, "kervan coordinator");
  if (!address_file_.empty()) check_address_file(options);

  // SIGINT/SIGTERM are taken by sigwait below, in this thread only: block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  CoordinatorServer server(options, std::move(secret));
  if (!address_file_.empty()) write_file_atomically(address_file_, server.address() + "\n");
  spdlog::info("coordinator of job '{}' listening on {} (journal {})", options.job_id, server.address(),
               options.journal);
  int signal = 0;
  sigwait(&stop_signals, &signal);
  spdlog::info("{}: stopping", signal == SIGINT ? "SIGINT" : "SIGTERM");
  return 0;
}

}  // namespace kervan
