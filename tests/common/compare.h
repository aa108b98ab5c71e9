#pragma once
// Comparisons shared by the unit and MPI tests.
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace kervan::test {

// ||a - b|| / ||b|| in double.
inline double rel_l2(const float* a, const float* b, int64_t n) {
  double d2 = 0, b2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    d2 += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    b2 += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(d2 / std::max(b2, 1e-30));
}

}  // namespace kervan::test
