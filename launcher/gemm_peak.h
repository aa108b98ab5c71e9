#pragma once
#include <cstdint>

#include "core/backend.h"

namespace kervan {

// The backend's fp32 GEMM throughput (FLOP/s) on square n x n matrices: best of `reps` timed
// calls after one warm-up. This is the denominator of MFU.
double measure_gemm_flops(Backend& backend, int64_t n, int reps);

// Peak resident set size of this process so far, in MiB.
double peak_rss_mb();

}  // namespace kervan
