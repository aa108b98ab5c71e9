// Elementwise activations and their derivatives (twins of core/cpu/activation.cpp):
//   GeluTanh  gelu(x)  = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//             gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
//   GeluErf   gelu(x)  = 0.5 x (1 + erf(x / sqrt(2))),  gelu'(x) = 0.5 (1 + erf(x/sqrt(2))) + x exp(-x^2/2) /
//   sqrt(2 pi) Relu      max(x, 0), derivative [x > 0] Tanh      tanh(x),   derivative 1 - tanh(x)^2
// and the gated unit x = [g | l] per row:  out = act(g) * l,  dg = dout * l * act'(g),  dl = dout * act(g).
#include "core/cuda/backend_impl.h"

namespace kervan {

using namespace cuda;

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

__device__ __forceinline__ float act_value(Activation a, float v) {
  switch (a) {
    case Activation::GeluTanh:
      return 0.5f * v * (1.0f + tanhf(kSqrt2OverPi * (v + kCubic * v * v * v)));
    case Activation::GeluErf:
      return 0.5f * v * (1.0f + erff(v * kInvSqrt2));
    case Activation::Relu:
      return v > 0.0f ? v : 0.0f;
    case Activation::Tanh:
      return tanhf(v);
  }
  return 0.0f;
}

__device__ __forceinline__ float act_grad(Activation a, float v) {
  switch (a) {
    case Activation::GeluTanh: {
      const float t = tanhf(kSqrt2OverPi * (v + kCubic * v * v * v));
      return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
    }
    case Activation::GeluErf:
      return 0.5f * (1.0f + erff(v * kInvSqrt2)) + v * expf(-0.5f * v * v) * kInvSqrt2Pi;
    case Activation::Relu:
      return v > 0.0f ? 1.0f : 0.0f;
    case Activation::Tanh: {
      const float t = tanhf(v);
      return 1.0f - t * t;
    }
  }
  return 0.0f;
}

__global__ void act_forward_kernel(float* out, const float* x, int64_t n, Activation a) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = act_value(a, x[i]);
}

__global__ void act_backward_kernel(float* dx, const float* x, const float* dout, int64_t n, Activation a) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) dx[i] = dout[i] * act_grad(a, x[i]);
}

__global__ void gated_forward_kernel(float* out, const float* x, int64_t N, int64_t H, Activation a) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= N * H) return;
  const int64_t n = i / H, c = i % H;
  const float* g = x + n * 2 * H;
  out[i] = act_value(a, g[c]) * g[H + c];
}

__global__ void gated_backward_kernel(float* dx, const float* x, const float* dout, int64_t N, int64_t H,
                                      Activation a) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= N * H) return;
  const int64_t n = i / H, c = i % H;
  const float* g = x + n * 2 * H;
  float* dg = dx + n * 2 * H;
  const float d = dout[i];
  dg[c] = d * g[H + c] * act_grad(a, g[c]);
  dg[H + c] = d * act_value(a, g[c]);
}

}  // namespace

void CudaBackend::activation_forward(Tensor& out, const Tensor& x, Activation act) {
  KERVAN_CHECK(out.numel() == x.numel(),
               "activation shapes: x " + shape_str(x.shape()) + ", out " + shape_str(out.shape()));
  const int64_t n = x.numel();
  if (n == 0) return;
  act_forward_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(out.data<float>(), x.data<float>(), n, act);
  check_launch("activation_forward", shape_str(x.shape()));
}

void CudaBackend::activation_backward(Tensor& dx, const Tensor& x, const Tensor& dout, Activation act) {
  KERVAN_CHECK(dx.numel() == x.numel() && dout.numel() == x.numel(),
               "activation backward shapes: x " + shape_str(x.shape()) + ", dx " + shape_str(dx.shape()) +
                   ", dout " + shape_str(dout.shape()));
  const int64_t n = x.numel();
  if (n == 0) return;
  act_backward_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(dx.data<float>(), x.data<float>(),
                                                                dout.data<float>(), n, act);
  check_launch("activation_backward", shape_str(x.shape()));
}

void CudaBackend::gated_activation_forward(Tensor& out, const Tensor& x, Activation act) {
  const auto [N, H2] = rows_cols(x);
  const int64_t H = H2 / 2;
  KERVAN_CHECK(H2 % 2 == 0 && out.numel() == N * H && !overlaps(out, x),
               "gated activation shapes: x " + shape_str(x.shape()) + ", out " + shape_str(out.shape()));
  if (N * H == 0) return;
  gated_forward_kernel<<<blocks_for(N * H, 256), 256, 0, stream()>>>(out.data<float>(), x.data<float>(), N, H,
                                                                     act);
  check_launch("gated_activation_forward", shape_str(x.shape()));
}

void CudaBackend::gated_activation_backward(Tensor& dx, const Tensor& x, const Tensor& dout, Activation act) {
  const auto [N, H2] = rows_cols(x);
  const int64_t H = H2 / 2;
  KERVAN_CHECK(dx.numel() == x.numel() && dout.numel() == N * H && !overlaps(dx, x) && !overlaps(dx, dout),
               "gated activation backward shapes: x " + shape_str(x.shape()) + ", dx " +
                   shape_str(dx.shape()) + ", dout " + shape_str(dout.shape()));
  if (N * H == 0) return;
  gated_backward_kernel<<<blocks_for(N * H, 256), 256, 0, stream()>>>(dx.data<float>(), x.data<float>(),
                                                                      dout.data<float>(), N, H, act);
  check_launch("gated_activation_backward", shape_str(x.shape()));
}

}  // namespace kervan
