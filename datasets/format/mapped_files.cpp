#include "datasets/format/mapped_files.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace kervan {

namespace {

// A fixed table the signal handler can read without locks or allocation: an entry is published
// by storing its begin address last (release), and retired by clearing it first.
struct Mapping {
  std::atomic<uintptr_t> begin{0};
  uintptr_t end = 0;
  char path[512] = {};
};
constexpr int kMaxMappings = 4096;
Mapping g_mappings[kMaxMappings];
std::mutex g_register_mu;

void write_str(const char* s) {
  const ssize_t ignored = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)ignored;
}

void on_sigbus(int sig, siginfo_t* info, void*) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (const Mapping& m : g_mappings) {
    const uintptr_t b = m.begin.load(std::memory_order_acquire);
    if (b != 0 && addr >= b && addr < m.end) {
      write_str("kervan: error: ");
      write_str(m.path);
      write_str(
          ": the file was truncated or replaced while kervan was reading it (another process changed it); "
          "restore it and run again\n");
      ::_exit(kExitUser);
    }
  }
  ::signal(sig, SIG_DFL);  // not one of ours: the default action (a core dump) on return
}

void install_handler() {
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, nullptr);
}

}  // namespace

void register_mapping(const void* begin, size_t bytes, const std::string& path) {
  std::lock_guard lock(g_register_mu);
  static const bool installed = (install_handler(), true);
  (void)installed;
  for (Mapping& m : g_mappings) {
    if (m.begin.load(std::memory_order_relaxed) != 0) continue;
    m.end = reinterpret_cast<uintptr_t>(begin) + bytes;
    std::strncpy(m.path, path.c_str(), sizeof(m.path) - 1);
    m.path[sizeof(m.path) - 1] = '\0';
    m.begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
    return;
  }
  // More mapped files than the table holds: they still work, only a SIGBUS in one is not named.
}

void unregister_mapping(const void* begin) {
  std::lock_guard lock(g_register_mu);
  for (Mapping& m : g_mappings)
    if (m.begin.load(std::memory_order_relaxed) == reinterpret_cast<uintptr_t>(begin)) {
      m.begin.store(0, std::memory_order_release);
      return;
    }
}

}  // namespace kervan
