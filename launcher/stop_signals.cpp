#include "launcher/stop_signals.h"

#include <unistd.h>

#include <csignal>

namespace kervan {

namespace {

volatile std::sig_atomic_t g_received = 0;

extern "C" void on_stop_signal(int sig) {
  if (g_received != 0 && sig == SIGINT) _exit(128 + SIGINT);  // the second Ctrl-C
  if (g_received == 0) g_received = sig;
}

constexpr int kSignals[] = {SIGTERM, SIGINT, SIGUSR1, SIGHUP};
struct sigaction g_previous[3];

}  // namespace

StopSignals::StopSignals() {
  g_received = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // blocking calls (MPI progress, file I/O) carry on
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &g_previous[i]);
}

StopSignals::~StopSignals() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_previous[i], nullptr);
}

int StopSignals::received() const {
  return g_received;
}

const char* signal_name(int signal) {
  switch (signal) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGHUP:
      return "SIGHUP";
  }
  return "a signal";
}

}  // namespace kervan
