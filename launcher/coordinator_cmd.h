#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "coordinator/coordinator_server.h"

namespace kervan {

// `kervan coordinator [--corpus DIR | NAME=DIR ...] --journal FILE [--listen HOST:PORT]`:
// serves the corpora to training workers, leases prepare work units, keeps the job's state in
// its journal, until SIGINT or SIGTERM.
class CoordinatorCommand {
 public:
  explicit CoordinatorCommand(CLI::App& app);
  CoordinatorCommand(const CoordinatorCommand&) = delete;
  CoordinatorCommand& operator=(const CoordinatorCommand&) = delete;

  bool selected() const { return cmd_->parsed(); }
  int run() const;

 private:
  // --address-file may be replaced only when it is kervan's (HOST:PORT) and none of the inputs.
  void check_address_file(const CoordinatorOptions& options) const;

  CLI::App* cmd_;
  std::vector<std::string> corpora_;
  CoordinatorOptions options_;
  std::string token_file_, address_file_;
  double dead_after_s_ = 10, lease_s_ = 30;
  int heartbeat_ms_ = 1000;
};

}  // namespace kervan
