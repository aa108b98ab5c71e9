#pragma once
// Central finite differences against analytic gradients.
//
// Everything runs in fp32, so the difference quotient carries a rounding error of about
// eps_f32 * |loss| / h next to the truncation error O(h^2). With h = 1e-2 on O(1) inputs the two
// balance near 1e-3 relative; we therefore compare whole gradient vectors by relative L2 error
// (robust to the few tiny entries whose own relative error is meaningless) with tolerance 1e-2,
// and check that a wrong gradient (e.g. off by a factor or a sign) would fail it.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace kervan::test {

inline void fill_normal(Tensor& t, uint64_t seed, float std = 1.0f) {
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = std * normal_at(seed, i);
}

// loss = sum(out * weights) in double: a scalar whose gradient w.r.t. out is `weights`.
inline double weighted_sum(const Tensor& out, const Tensor& weights) {
  double s = 0.0;
  const float* o = out.data<float>();
  const float* w = weights.data<float>();
  for (int64_t i = 0; i < out.numel(); ++i) s += static_cast<double>(o[i]) * w[i];
  return s;
}

// Relative L2 error between the numerical gradient of `loss` w.r.t. `x` and `analytic`.
inline double fd_relative_error(Tensor& x, const std::vector<float>& analytic, const std::function<double()>& loss,
                                float h = 1e-2f) {
  float* p = x.data<float>();
  double num2 = 0.0, diff2 = 0.0, ana2 = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float keep = p[i];
    p[i] = keep + h;
    const double up = loss();
    p[i] = keep - h;
    const double down = loss();
    p[i] = keep;
    const double g = (up - down) / (2.0 * h);
    num2 += g * g;
    ana2 += static_cast<double>(analytic[i]) * analytic[i];
    diff2 += (g - analytic[i]) * (g - analytic[i]);
  }
  EXPECT_GT(ana2, 0.0) << "analytic gradient is identically zero: the check would be vacuous";
  return std::sqrt(diff2 / std::max(num2, 1e-30));
}

inline std::vector<float> to_vector(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

constexpr double kFdTolerance = 1e-2;

}  // namespace kervan::test
