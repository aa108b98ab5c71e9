#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace kervan {

// `kervan status --coordinator HOST:PORT [--json]`: the job as its coordinator sees it: workers
// (rank, host, last heartbeat, tokens/s, alive or dead), the data position, epoch progress, ETA,
// and a distributed prepare's units. `--stop REASON` asks the job to stop cleanly instead.
class StatusCommand {
 public:
  explicit StatusCommand(CLI::App& app);
  StatusCommand(const StatusCommand&) = delete;
  StatusCommand& operator=(const StatusCommand&) = delete;

  bool selected() const { return cmd_->parsed(); }
  int run() const;

 private:
  CLI::App* cmd_;
  std::string address_, job_id_ = "default", token_file_, stop_reason_;
  bool json_ = false;
  double timeout_s_ = 10;
};

}  // namespace kervan
