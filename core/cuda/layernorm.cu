// LayerNorm and RMS norm over the last dimension C (twins of core/cpu/layernorm.cpp, rmsnorm.cpp):
//   LayerNorm  mean = sum(x)/C, rstd = 1/sqrt(sum((x-mean)^2)/C + eps), xhat = (x-mean)*rstd,
//              out = xhat * w + b;  backward with g = dout * w:
//              dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dw += sum_n dout*xhat,  db += sum_n dout
//   RMS norm   rstd = 1/sqrt(sum(x^2)/C + eps), xhat = x * rstd, out = xhat * w;
//              dx = rstd * (g - xhat * mean(g * xhat)),  dw += sum_n dout*xhat
// One block per row for the row statistics (two passes over the row, as the CPU twin); dw and db
// are deterministic column sums (column_sum.cuh).
#include "core/cuda/backend_impl.h"
#include "core/cuda/column_sum.cuh"
#include "core/cuda/reduce.cuh"

namespace kervan {

using namespace cuda;

namespace {

constexpr int kThreads = 256;

__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, const float* x, const float* w,
                                         const float* b, int64_t C, float eps) {
  __shared__ float sh[32];
  const int64_t n = blockIdx.x;
  const float* xr = x + n * C;
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += xr[c];
  const float m = block_sum(s, sh) / C;
  float v = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) v += (xr[c] - m) * (xr[c] - m);
  const float r = 1.0f / sqrtf(block_sum(v, sh) / C + eps);
  float* o = out + n * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) o[c] = (xr[c] - m) * r * w[c] + b[c];
  if (threadIdx.x == 0) {
    mean[n] = m;
    rstd[n] = r;
  }
}

// dx for one row per block. has_mean: LayerNorm (subtract the mean, and mean(g) from g); else RMS.
__global__ void norm_backward_dx_kernel(float* dx, const float* dout, const float* x, const float* w,
                                        const float* mean, const float* rstd, int64_t C, bool has_mean) {
  __shared__ float sh[32];
  const int64_t n = blockIdx.x;
  const float* xr = x + n * C;
  const float* dr = dout + n * C;
  const float m = has_mean ? mean[n] : 0.0f, r = rstd[n];
  float gs = 0.0f, gx = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float g = dr[c] * w[c];
    gs += g;
    gx += g * (xr[c] - m) * r;
  }
  const float g_mean = has_mean ? block_sum(gs, sh) / C : 0.0f;
  const float gx_mean = block_sum(gx, sh) / C;
  float* o = dx + n * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float xhat = (xr[c] - m) * r;
    o[c] = r * (dr[c] * w[c] - g_mean - xhat * gx_mean);
  }
}

__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* x, const float* w, int64_t C,
                                       float eps) {
  __shared__ float sh[32];
  const int64_t n = blockIdx.x;
  const float* xr = x + n * C;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) ss += xr[c] * xr[c];
  const float r = 1.0f / sqrtf(block_sum(ss, sh) / C + eps);
  float* o = out + n * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) o[c] = xr[c] * r * w[c];
  if (threadIdx.x == 0) rstd[n] = r;
}

}  // namespace

void CudaBackend::layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                                    const Tensor& b, float eps) {
  const auto [N, C] = rows_cols(x);
  const std::string shapes = "x " + shape_str(x.shape()) + ", out " + shape_str(out.shape()) + ", w " +
                             shape_str(w.shape()) + ", mean " + shape_str(mean.shape());
  KERVAN_CHECK(
      out.numel() == x.numel() && w.numel() == C && b.numel() == C && mean.numel() == N && rstd.numel() == N,
      "layernorm shapes: " + shapes);
  if (N == 0) return;
  layernorm_forward_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream()>>>(
      out.data<float>(), mean.data<float>(), rstd.data<float>(), x.data<float>(), w.data<float>(),
      b.data<float>(), C, eps);
  check_launch("layernorm_forward", shapes);
}

void CudaBackend::layernorm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& dout, const Tensor& x,
                                     const Tensor& w, const Tensor& mean, const Tensor& rstd) {
  const RowsCols rc = rows_cols(x);
  const int64_t N = rc.rows, C = rc.cols;  // plain copies: the lambdas below capture C
  const std::string shapes =
      "x " + shape_str(x.shape()) + ", dx " + shape_str(dx.shape()) + ", dout " + shape_str(dout.shape());
  KERVAN_CHECK(dx.numel() == x.numel() && dout.numel() == x.numel() && w.numel() == C && dw.numel() == C &&
                   db.numel() == C && mean.numel() == N && rstd.numel() == N,
               "layernorm backward shapes: " + shapes);
  KERVAN_CHECK(!overlaps(dx, dout) && !overlaps(dx, x), "layernorm backward: dx aliases dout or x");
  if (N == 0) return;
  norm_backward_dx_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream()>>>(
      dx.data<float>(), dout.data<float>(), x.data<float>(), w.data<float>(), mean.data<float>(),
      rstd.data<float>(), C, true);
  check_launch("layernorm_backward (dx)", shapes);
  const float *pd = dout.data<float>(), *px = x.data<float>(), *pm = mean.data<float>(),
              *pr = rstd.data<float>();
  column_sum(
      *this, dw.data<float>(), N, C,
      [=] __device__(int64_t n, int64_t c) { return pd[n * C + c] * (px[n * C + c] - pm[n]) * pr[n]; },
      "layernorm_backward (dw)");
  column_sum(
      *this, db.data<float>(), N, C, [=] __device__(int64_t n, int64_t c) { return pd[n * C + c]; },
      "layernorm_backward (db)");
}

void CudaBackend::rmsnorm_forward(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& w, float eps) {
  const auto [N, C] = rows_cols(x);
  const std::string shapes = "x " + shape_str(x.shape()) + ", out " + shape_str(out.shape()) + ", w " +
                             shape_str(w.shape()) + ", rstd " + shape_str(rstd.shape());
  KERVAN_CHECK(out.numel() == x.numel() && w.numel() == C && rstd.numel() == N, "rmsnorm shapes: " + shapes);
  if (N == 0) return;
  rmsnorm_forward_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream()>>>(
      out.data<float>(), rstd.data<float>(), x.data<float>(), w.data<float>(), C, eps);
  check_launch("rmsnorm_forward", shapes);
}

void CudaBackend::rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dout, const Tensor& x,
                                   const Tensor& w, const Tensor& rstd) {
  const RowsCols rc = rows_cols(x);
  const int64_t N = rc.rows, C = rc.cols;  // plain copies: the lambda below captures C
  const std::string shapes =
      "x " + shape_str(x.shape()) + ", dx " + shape_str(dx.shape()) + ", dout " + shape_str(dout.shape());
  KERVAN_CHECK(dx.numel() == x.numel() && dout.numel() == x.numel() && w.numel() == C && dw.numel() == C &&
                   rstd.numel() == N,
               "rmsnorm backward shapes: " + shapes);
  KERVAN_CHECK(!overlaps(dx, dout) && !overlaps(dx, x), "rmsnorm backward: dx aliases dout or x");
  if (N == 0) return;
  norm_backward_dx_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream()>>>(
      dx.data<float>(), dout.data<float>(), x.data<float>(), w.data<float>(), nullptr, rstd.data<float>(), C,
      false);
  check_launch("rmsnorm_backward (dx)", shapes);
  const float *pd = dout.data<float>(), *px = x.data<float>(), *pr = rstd.data<float>();
  column_sum(
      *this, dw.data<float>(), N, C,
      [=] __device__(int64_t n, int64_t c) { return pd[n * C + c] * px[n * C + c] * pr[n]; },
      "rmsnorm_backward (dw)");
}

}  // namespace kervan
