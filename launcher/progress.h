#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace kervan {

// Progress of a long job over a known number of input bytes. On a terminal (stderr is a tty):
// one line redrawn in place, at most 5 times a second; otherwise a log line every ~10 s.
//   "  42.1% 52.3/124.2 MB  1830 docs/s  11.2 MB/s  ETA 0:00:06"
class Progress {
 public:
  // `label` prefixes each line (e.g. "rank 1: "); `start_bytes` were done before this run (kept).
  Progress(uint64_t total_bytes, uint64_t start_bytes, std::string label, bool terminal);
  // Whether stderr is a terminal.
  static bool stderr_is_terminal();

  void update(uint64_t bytes, uint64_t documents);
  // Ends the redrawn line (no-op for log lines).
  void finish();

 private:
  std::string line(uint64_t bytes, uint64_t documents) const;

  using Clock = std::chrono::steady_clock;
  uint64_t total_, start_;
  std::string label_;
  bool terminal_, drawn_ = false;
  Clock::time_point t0_, last_;
};

}  // namespace kervan
