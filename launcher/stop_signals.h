#pragma once

namespace kervan {

// SIGTERM, SIGINT, SIGUSR1 and SIGHUP (what Slurm and a user send before a preemption, at Ctrl-C
// or when the terminal goes) ask
// the run to stop at the next step boundary, where the ranks agree on it, save a checkpoint and
// exit 0. A second SIGINT ends the process at once (exit 130), as an impatient Ctrl-C expects.
// The previous handlers come back when the object goes.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The first signal received, or 0.
  int received() const;
};

// "SIGTERM", "SIGINT", "SIGUSR1", "SIGHUP".
const char* signal_name(int signal);

}  // namespace kervan
