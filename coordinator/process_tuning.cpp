#include "coordinator/process_tuning.h"

#include <absl/synchronization/mutex.h>
#include <malloc.h>

#include <cstdlib>
#include <mutex>

namespace kervan {

void tune_process_for_grpc() {
  static std::once_flag once;
  std::call_once(once, [] {
    setenv("GRPC_POLL_STRATEGY", "epoll1",
           /*overwrite=*/0);  // read when gRPC starts: before any channel or server
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  });
}

}  // namespace kervan
