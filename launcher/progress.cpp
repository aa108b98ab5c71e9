#include "launcher/progress.h"

#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace kervan {

std::string clock_text(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

// Around the logger's own sink: the status line is erased before each message and drawn again
// after it, so log lines scroll above it.
class StatusLine::Sink final : public spdlog::sinks::sink {
 public:
  Sink(StatusLine& line, std::shared_ptr<spdlog::sinks::sink> inner) : line_(line), inner_(std::move(inner)) {
    set_level(inner_->level());
  }
  void log(const spdlog::details::log_msg& msg) override {
    std::lock_guard lock(line_.mutex_);
    const bool was_drawn = line_.drawn_;
    line_.erase_locked();
    inner_->log(msg);
    inner_->flush();
    if (was_drawn) line_.draw_locked();
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> f) override { inner_->set_formatter(std::move(f)); }

 private:
  StatusLine& line_;
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

StatusLine::StatusLine(bool terminal) : terminal_(terminal) {
  if (!terminal_) return;
  std::vector<spdlog::sink_ptr>& sinks = spdlog::default_logger()->sinks();
  if (sinks.size() != 1) return;  // not main()'s stderr logger: leave it alone
  inner_ = sinks[0];
  wrapper_ = std::make_shared<Sink>(*this, inner_);
  sinks[0] = wrapper_;
}

StatusLine::~StatusLine() {
  clear();
  if (!wrapper_) return;
  for (spdlog::sink_ptr& s : spdlog::default_logger()->sinks())
    if (s == wrapper_) s = inner_;
}

bool StatusLine::stderr_is_terminal() {
  return ::isatty(STDERR_FILENO) == 1;
}

int StatusLine::terminal_width() {
  winsize w{};
  return ::ioctl(STDERR_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0 ? w.ws_col : 80;
}

void StatusLine::update(std::string text, bool now) {
  if (!terminal_) return;
  std::lock_guard lock(mutex_);
  text_ = std::move(text);
  if (drawn_ && !now && std::chrono::steady_clock::now() - last_ < std::chrono::milliseconds(200)) return;
  draw_locked();
}

void StatusLine::clear() {
  if (!terminal_) return;
  std::lock_guard lock(mutex_);
  erase_locked();
}

void StatusLine::draw_locked() {
  // Longer than the terminal, the line would wrap and \r would no longer go back to its start.
  const size_t width = static_cast<size_t>(std::max(terminal_width() - 1, 1));
  std::fprintf(stderr, "\r%s\x1b[K", text_.substr(0, width).c_str());
  std::fflush(stderr);
  drawn_ = true;
  last_ = std::chrono::steady_clock::now();
}

void StatusLine::erase_locked() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\x1b[K");
  std::fflush(stderr);
  drawn_ = false;
}

Progress::Progress(uint64_t total_bytes, uint64_t start_bytes, std::string label, bool terminal)
    : total_(total_bytes),
      start_(start_bytes),
      label_(std::move(label)),
      status_(terminal),
      t0_(Clock::now()),
      last_(t0_) {}

std::string Progress::line(uint64_t bytes, uint64_t documents) const {
  const double s = std::chrono::duration<double>(Clock::now() - t0_).count();
  const double done_mb = bytes / 1e6, total_mb = total_ / 1e6;
  const double mb_s = s > 0 ? (bytes - start_) / 1e6 / s : 0.0;
  const double docs_s = s > 0 ? documents / s : 0.0;
  std::string eta = "--:--:--";
  if (mb_s > 0 && total_ >= bytes) {
    const auto left = static_cast<long long>((total_mb - done_mb) / mb_s);
    eta = fmt::format("{}:{:02}:{:02}", left / 3600, left / 60 % 60, left % 60);
  }
  const double pct = total_ ? 100.0 * bytes / total_ : 100.0;
  return fmt::format("{}{:5.1f}% {:.1f}/{:.1f} MB  {:.0f} docs/s  {:.1f} MB/s  ETA {}", label_, pct, done_mb,
                     total_mb, docs_s, mb_s, eta);
}

void Progress::update(uint64_t bytes, uint64_t documents) {
  if (status_.terminal()) return status_.update(line(bytes, documents));
  const auto now = Clock::now();
  if (now - last_ < std::chrono::seconds(10)) return;
  spdlog::info("{}", line(bytes, documents));
  last_ = now;
}

void Progress::finish() {
  status_.clear();
}

std::string training_bar(int64_t step, int64_t steps, double tokens_per_s, double eta_s, int width) {
  const double frac =
      steps > 0 ? std::clamp(static_cast<double>(step) / static_cast<double>(steps), 0.0, 1.0) : 1.0;
  std::string rate = "-- tok/s";
  if (tokens_per_s >= 1e6)
    rate = fmt::format("{:.2f}M tok/s", tokens_per_s / 1e6);
  else if (tokens_per_s >= 1e4)
    rate = fmt::format("{:.1f}k tok/s", tokens_per_s / 1e3);
  else if (tokens_per_s > 0)
    rate = fmt::format("{:.0f} tok/s", tokens_per_s);
  const std::string head = fmt::format("step {}/{} ", step, steps);
  const std::string tail =
      fmt::format(" {:5.1f}% | {} | ETA {}", 100 * frac, rate, eta_s >= 0 ? clock_text(eta_s) : "--:--");
  // The bar takes what is left of the width, between 10 and 40 columns (none when even 10 do not fit).
  const int room = width - 1 - static_cast<int>(head.size() + tail.size()) - 2;
  if (room < 10) return head.substr(0, head.size() - 1) + tail;
  const int cells = std::min(room, 40);
  const int full = static_cast<int>(frac * cells);
  std::string bar(static_cast<size_t>(cells), ' ');
  std::fill_n(bar.begin(), full, '=');
  if (full < cells) bar[static_cast<size_t>(full)] = '>';
  return head + "[" + bar + "]" + tail;
}

TrainingBar::TrainingBar(bool terminal, int64_t first_step, int64_t steps)
    : status_(terminal), first_(first_step), steps_(steps), t0_(std::chrono::steady_clock::now()) {}

void TrainingBar::step_done(int64_t done, double tokens) {
  if (!status_.terminal()) return;
  tokens_ += tokens;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const int64_t this_run = done - first_;
  const double eta =
      this_run > 0 ? elapsed / static_cast<double>(this_run) * static_cast<double>(steps_ - done) : -1.0;
  status_.update(
      training_bar(done, steps_, elapsed > 0 ? tokens_ / elapsed : 0.0, eta, StatusLine::terminal_width()),
      /*now=*/done == steps_);
}

}  // namespace kervan
