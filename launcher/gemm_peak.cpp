#include "launcher/gemm_peak.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>

namespace kervan {

double measure_gemm_flops(Backend& be, int64_t n, int reps) {
  Tensor a = be.empty({n, n}, DType::F32), b = be.empty({n, n}, DType::F32), c = be.empty({n, n}, DType::F32);
  be.fill(a, 0.5f);
  be.fill(b, 0.25f);
  double best = 1e30;
  for (int r = 0; r <= reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    be.matmul(c, a, false, b, false, 1.0f, 0.0f);
    be.synchronize();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::min(best, s);  // r == 0 warms caches and thread pools
  }
  return 2.0 * n * n * n / best;
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // Linux reports KiB
}

}  // namespace kervan
