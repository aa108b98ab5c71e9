// GELU, tanh approximation (GPT-2):
//   gelu(x)  = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//   gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// This file is built with -ffast-math so that tanhf vectorises through glibc's libmvec.
#include <cmath>

#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;
}  // namespace

void CpuBackend::gelu_forward(Tensor& out, const Tensor& x) {
  KERVAN_CHECK(out.numel() == x.numel(),
               "gelu shapes: x " + shape_str(x.shape()) + ", out " + shape_str(out.shape()));
  const float* px = x.data<float>();
  float* po = out.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float v = px[i];
    po[i] = 0.5f * v * (1.0f + tanhf(kSqrt2OverPi * (v + kCubic * v * v * v)));
  }
}

void CpuBackend::gelu_backward(Tensor& dx, const Tensor& x, const Tensor& dout) {
  KERVAN_CHECK(dx.numel() == x.numel() && dout.numel() == x.numel(),
               "gelu backward shapes: x " + shape_str(x.shape()) + ", dx " + shape_str(dx.shape()) +
                   ", dout " + shape_str(dout.shape()));
  const float* px = x.data<float>();
  const float* pd = dout.data<float>();
  float* pdx = dx.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float v = px[i];
    const float t = tanhf(kSqrt2OverPi * (v + kCubic * v * v * v));
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
    pdx[i] = pd[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
  }
}

}  // namespace kervan
