#include "launcher/status_cmd.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>

#include "coordinator/coordinator_client.h"
#include "launcher/cli_checks.h"

namespace kervan {

namespace v1 = coordinator::v1;

namespace {

std::string duration_text(double s) {
  if (s < 120) return fmt::format("{:.1f} s", s);
  if (s < 7200) return fmt::format("{:.0f} min", s / 60);
  return fmt::format("{:.1f} h", s / 3600);
}

const char* state_name(v1::WorkerStatus::State s) {
  switch (s) {
    case v1::WorkerStatus::STATE_ALIVE:
      return "alive";
    case v1::WorkerStatus::STATE_DEAD:
      return "DEAD";
    case v1::WorkerStatus::STATE_FINISHED:
      return "finished";
    case v1::WorkerStatus::STATE_UNKNOWN:
      return "unknown";
    default:
      return "?";
  }
}

void print_table(const v1::StatusResponse& s) {
  std::string out =
      fmt::format("job {}: coordinator up {}", s.job_id(), duration_text(s.uptime_ms() / 1000.0));
  if (s.step() >= 0)
    out += fmt::format(", step {}, {} samples consumed, epoch {:.3f}, {:.0f} tokens/s, ETA {}", s.step(),
                       s.consumed_samples(), s.epoch(), s.tokens_per_s(),
                       s.eta_s() > 0 ? duration_text(s.eta_s()) : "-");
  out += "\n";
  if (s.has_committed())
    out += fmt::format("committed data position: step {}, {} samples{}\n", s.committed().step(),
                       s.committed().consumed_samples(),
                       s.committed().checkpoint().empty() ? "" : " (" + s.committed().checkpoint() + ")");
  if (s.has_prepare())
    out += fmt::format("prepare: {} of {} work units done, {} leased, manifest {}\n",
                       s.prepare().units_done(), s.prepare().unit_count(), s.prepare().units_leased(),
                       s.prepare().manifest_written() ? "written" : "not yet written");
  if (s.stop_requested()) out += "STOP requested: " + s.stop_reason() + "\n";
  out += fmt::format("{:>6} {:<8} {:>5} {:>7} {:>7} {:<20} {:>8} {:<9} {:>10} {:>8} {:>11}\n", "worker",
                     "role", "rank", "dp", "tp", "host", "pid", "state", "last beat", "step", "tokens/s");
  for (const v1::WorkerStatus& w : s.workers()) {
    const v1::WorkerIdentity& id = w.identity();
    out += fmt::format("{:>6} {:<8} {:>5} {:>7} {:>7} {:<20} {:>8} {:<9} {:>10} {:>8} {:>11.0f}\n",
                       w.worker_id(), id.role() == v1::WORKER_ROLE_TRAIN ? "train" : "prepare", id.rank(),
                       fmt::format("{}/{}", id.dp_rank(), id.dp_size()),
                       fmt::format("{}/{}", id.tp_rank(), id.tp_size()), id.host(), id.pid(),
                       state_name(w.state()), duration_text(w.since_heartbeat_ms() / 1000.0) + " ago",
                       w.step(), w.tokens_per_s());
  }
  std::fputs(out.c_str(), stdout);
}

}  // namespace

StatusCommand::StatusCommand(CLI::App& app) {
  cmd_ =
      app.add_subcommand("status", "Show a job's workers, data position and progress from its coordinator");
  cmd_->add_option("--coordinator", address_, "The coordinator's HOST:PORT")->required();
  cmd_->add_option("--job", job_id_, "The job id (default)");
  cmd_->add_option("--token-file", token_file_,
                   "File with the shared secret (mode 600); default $KERVAN_TOKEN");
  cmd_->add_flag("--json", json_, "Print the status as one JSON object");
  cmd_->add_option("--timeout-s", timeout_s_, "How long to retry an unreachable coordinator (10)")
      ->check(FiniteRange(0.1, 1e7));
  cmd_->add_option("--stop", stop_reason_, "Ask the job to stop cleanly, giving this reason");
}

int StatusCommand::run() const {
  CoordinatorClient client({address_, job_id_, timeout_s_, "--timeout-s"},
                           SharedSecret::require(token_file_, "kervan status"));
  if (!stop_reason_.empty()) {
    client.stop(stop_reason_);
    std::printf("asked job %s to stop: %s\n", job_id_.c_str(), stop_reason_.c_str());
    return 0;
  }
  const v1::StatusResponse s = client.status();
  if (json_) {
    std::string text;
    google::protobuf::util::JsonPrintOptions opts;
    opts.preserve_proto_field_names = true;
    opts.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(s, &text, opts);
    std::printf("%s\n", text.c_str());
  } else {
    print_table(s);
  }
  return 0;
}

}  // namespace kervan
