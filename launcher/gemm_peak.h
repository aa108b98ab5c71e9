#pragma once
#include <cstdint>

#include "core/backend.h"

namespace kervan {

// One GEMM's shape: C[m, n] = op(A)[m, k] op(B)[k, n], op = transpose where trans_a / trans_b.
struct GemmShape {
  int64_t m, n, k;
  bool trans_a = false, trans_b = false;
};

// The backend's fp32 GEMM throughput (FLOP/s) on `shape`: best of `reps` timed calls after one
// warm-up.
double measure_gemm_flops(Backend& backend, const GemmShape& shape, int reps);

// The same on square n x n matrices: the denominator of MFU.
inline double measure_gemm_flops(Backend& backend, int64_t n, int reps) {
  return measure_gemm_flops(backend, GemmShape{n, n, n}, reps);
}

// Peak resident set size of this process so far, in MiB.
double peak_rss_mb();

}  // namespace kervan
