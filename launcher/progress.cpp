#include "launcher/progress.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

namespace kervan {

Progress::Progress(uint64_t total_bytes, uint64_t start_bytes, std::string label, bool terminal)
    : total_(total_bytes), start_(start_bytes), label_(std::move(label)), terminal_(terminal),
      t0_(Clock::now()), last_(t0_) {}

bool Progress::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

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
  return fmt::format("{}{:5.1f}% {:.1f}/{:.1f} MB  {:.0f} docs/s  {:.1f} MB/s  ETA {}", label_, pct, done_mb, total_mb,
                     docs_s, mb_s, eta);
}

void Progress::update(uint64_t bytes, uint64_t documents) {
  const auto now = Clock::now();
  if (terminal_) {
    if (drawn_ && now - last_ < std::chrono::milliseconds(200)) return;
    std::fprintf(stderr, "\r%s\x1b[K", line(bytes, documents).c_str());
    std::fflush(stderr);
    drawn_ = true;
  } else {
    if (now - last_ < std::chrono::seconds(10)) return;
    spdlog::info("{}", line(bytes, documents));
  }
  last_ = now;
}

void Progress::finish() {
  if (terminal_ && drawn_) {
    std::fprintf(stderr, "\r\x1b[K");
    std::fflush(stderr);
    drawn_ = false;
  }
}

}  // namespace kervan
