#pragma once
#include <spdlog/sinks/sink.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace kervan {

// "1:02:03" / "2:03"
std::string clock_text(double seconds);

// One line at the bottom of the terminal (stderr), redrawn in place at most 5 times a second.
// While it is shown, the log lines of the default spdlog logger appear above it: each message
// erases the line, is written, and the line is drawn again. Without a terminal it draws nothing.
class StatusLine {
 public:
  explicit StatusLine(bool terminal);
  ~StatusLine();  // erases the line and gives the logger back its own sinks
  StatusLine(const StatusLine&) = delete;
  StatusLine& operator=(const StatusLine&) = delete;
  // Whether stderr is a terminal.
  static bool stderr_is_terminal();
  // The terminal's width in columns (80 when it does not say).
  static int terminal_width();

  // Sets the text; draws it unless it was drawn less than 200 ms ago (`now`: draw anyway).
  void update(std::string text, bool now = false);
  // Erases the line until the next update (say, before writing to stdout on the same terminal).
  void clear();
  bool terminal() const { return terminal_; }

 private:
  class Sink;
  void draw_locked();
  void erase_locked();

  bool terminal_;
  std::mutex mutex_;  // the training thread updates; any thread may log
  std::string text_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_;
  std::shared_ptr<spdlog::sinks::sink> inner_, wrapper_;  // the logger's stderr sink, and ours around it
};

// Progress of a long job over a known number of input bytes (kervan prepare). On a terminal: a
// StatusLine; otherwise a log line every ~10 s.
//   "  42.1% 52.3/124.2 MB  1830 docs/s  11.2 MB/s  ETA 0:00:06"
class Progress {
 public:
  // `label` prefixes each line (e.g. "rank 1: "); `start_bytes` were done before this run (kept).
  Progress(uint64_t total_bytes, uint64_t start_bytes, std::string label, bool terminal);
  static bool stderr_is_terminal() { return StatusLine::stderr_is_terminal(); }

  void update(uint64_t bytes, uint64_t documents);
  // Ends the redrawn line (no-op for log lines).
  void finish();

 private:
  std::string line(uint64_t bytes, uint64_t documents) const;

  using Clock = std::chrono::steady_clock;
  uint64_t total_, start_;
  std::string label_;
  StatusLine status_;
  Clock::time_point t0_, last_;
};

// The training progress bar, fitted to `width` columns:
//   "step 120/1000 [=====>              ]  12.0% | 35.2k tok/s | ETA 1:02:03"
// (tokens/s of 0: none measured yet; eta_s < 0: unknown).
std::string training_bar(int64_t step, int64_t steps, double tokens_per_s, double eta_s, int width);

// kervan train and finetune on rank 0: a training_bar under the per-step log lines while stderr
// is a terminal; nothing otherwise.
class TrainingBar {
 public:
  // Steps [first_step, steps) are this run's.
  TrainingBar(bool terminal, int64_t first_step, int64_t steps);
  // After each step: `done` steps are done, `tokens` were trained in this one.
  void step_done(int64_t done, double tokens);
  // Erases the bar before text goes to stdout (samples); the next step draws it again.
  void clear() { status_.clear(); }

 private:
  StatusLine status_;
  int64_t first_, steps_;
  double tokens_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace kervan
