// Elementwise activations and their derivatives:
//   GeluTanh  gelu(x)  = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)        (GPT-2, T5 v1.1)
//             gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
//   GeluErf   gelu(x)  = 0.5 x (1 + erf(x / sqrt(2)))                                    (BERT)
//             gelu'(x) = 0.5 (1 + erf(x / sqrt(2))) + x exp(-x^2 / 2) / sqrt(2 pi)
//   Relu      max(x, 0), derivative [x > 0]                                              (T5 v1.0)
//   Tanh      tanh(x),   derivative 1 - tanh(x)^2                                        (BERT's pooler)
// and the gated unit of T5 v1.1, x = [g | l] per row:  out = act(g) * l,
//   dg = dout * l * act'(g),  dl = dout * act(g).
// This file is built with -ffast-math so that tanhf, erff and expf vectorise through glibc's libmvec.
#include <cmath>

#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

template <typename F>
void map(float* out, const float* x, int64_t n, F f) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = f(x[i]);
}

inline float gelu_tanh(float v) {
  return 0.5f * v * (1.0f + tanhf(kSqrt2OverPi * (v + kCubic * v * v * v)));
}
inline float gelu_tanh_grad(float v) {
  const float t = tanhf(kSqrt2OverPi * (v + kCubic * v * v * v));
  return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
}
inline float gelu_erf(float v) {
  return 0.5f * v * (1.0f + erff(v * kInvSqrt2));
}
inline float gelu_erf_grad(float v) {
  return 0.5f * (1.0f + erff(v * kInvSqrt2)) + v * expf(-0.5f * v * v) * kInvSqrt2Pi;
}
inline float relu(float v) {
  return v > 0.0f ? v : 0.0f;
}
inline float relu_grad(float v) {
  return v > 0.0f ? 1.0f : 0.0f;
}
inline float tanh_grad(float v) {
  const float t = tanhf(v);
  return 1.0f - t * t;
}

// Calls body(value, derivative) with the activation's two functions, as lambdas (each its own
// type, so the loops are instantiated per activation and inline the math).
template <typename Body>
void with_activation(Activation act, Body body) {
  switch (act) {
    case Activation::GeluTanh:
      return body([](float v) { return gelu_tanh(v); }, [](float v) { return gelu_tanh_grad(v); });
    case Activation::GeluErf:
      return body([](float v) { return gelu_erf(v); }, [](float v) { return gelu_erf_grad(v); });
    case Activation::Relu:
      return body([](float v) { return relu(v); }, [](float v) { return relu_grad(v); });
    case Activation::Tanh:
      return body([](float v) { return tanhf(v); }, [](float v) { return tanh_grad(v); });
  }
}

}  // namespace

void CpuBackend::activation_forward(Tensor& out, const Tensor& x, Activation act) {
  KERVAN_CHECK(out.numel() == x.numel(),
               "activation shapes: x " + shape_str(x.shape()) + ", out " + shape_str(out.shape()));
  with_activation(act, [&](auto f, auto) { map(out.data<float>(), x.data<float>(), x.numel(), f); });
}

void CpuBackend::activation_backward(Tensor& dx, const Tensor& x, const Tensor& dout, Activation act) {
  KERVAN_CHECK(dx.numel() == x.numel() && dout.numel() == x.numel(),
               "activation backward shapes: x " + shape_str(x.shape()) + ", dx " + shape_str(dx.shape()) +
                   ", dout " + shape_str(dout.shape()));
  const float* px = x.data<float>();
  const float* pd = dout.data<float>();
  float* pdx = dx.data<float>();
  const int64_t n = x.numel();
  with_activation(act, [&](auto, auto grad) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) pdx[i] = pd[i] * grad(px[i]);
  });
}

void CpuBackend::gated_activation_forward(Tensor& out, const Tensor& x, Activation act) {
  const auto [N, H2] = rows_cols(x);
  const int64_t H = H2 / 2;
  KERVAN_CHECK(H2 % 2 == 0 && out.numel() == N * H && !overlaps(out, x),
               "gated activation shapes: x " + shape_str(x.shape()) + ", out " + shape_str(out.shape()));
  const float* px = x.data<float>();
  float* po = out.data<float>();
  with_activation(act, [&](auto f, auto) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* g = px + n * H2;
      const float* l = g + H;
      float* o = po + n * H;
#pragma omp simd
      for (int64_t c = 0; c < H; ++c) o[c] = f(g[c]) * l[c];
    }
  });
}

void CpuBackend::gated_activation_backward(Tensor& dx, const Tensor& x, const Tensor& dout, Activation act) {
  const auto [N, H2] = rows_cols(x);
  const int64_t H = H2 / 2;
  KERVAN_CHECK(dx.numel() == x.numel() && dout.numel() == N * H && !overlaps(dx, x) && !overlaps(dx, dout),
               "gated activation backward shapes: x " + shape_str(x.shape()) + ", dx " +
                   shape_str(dx.shape()) + ", dout " + shape_str(dout.shape()));
  const float* px = x.data<float>();
  const float* pd = dout.data<float>();
  float* pdx = dx.data<float>();
  with_activation(act, [&](auto f, auto grad) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* g = px + n * H2;
      const float* l = g + H;
      const float* d = pd + n * H;
      float* dg = pdx + n * H2;
      float* dl = dg + H;
#pragma omp simd
      for (int64_t c = 0; c < H; ++c) {
        dg[c] = d[c] * l[c] * grad(g[c]);
        dl[c] = d[c] * f(g[c]);
      }
    }
  });
}

}  // namespace kervan
