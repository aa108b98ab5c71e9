// RMS norm without bias or mean subtraction (T5's layer norm), per row x of C elements:
//   rstd = 1 / sqrt(sum(x^2) / C + eps),  xhat = x * rstd,  out = xhat * w
// Backward, with g = dout * w:
//   dx = rstd * (g - xhat * mean(g * xhat)),  dw += dout * xhat
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

void CpuBackend::rmsnorm_forward(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& w, float eps) {
  const auto [N, C] = rows_cols(x);
  KERVAN_CHECK(out.numel() == x.numel() && w.numel() == C && rstd.numel() == N,
               "rmsnorm shapes: x " + shape_str(x.shape()) + ", out " + shape_str(out.shape()) + ", w " +
                   shape_str(w.shape()) + ", rstd " + shape_str(rstd.shape()));
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  float* po = out.data<float>();
  float* pr = rstd.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = px + n * C;
    float ss = 0.0f;
    for (int64_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
    const float r = 1.0f / std::sqrt(ss / C + eps);
    float* o = po + n * C;
    for (int64_t c = 0; c < C; ++c) o[c] = xr[c] * r * pw[c];
    pr[n] = r;
  }
}

void CpuBackend::rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dout, const Tensor& x,
                                  const Tensor& w, const Tensor& rstd) {
  const auto [N, C] = rows_cols(x);
  KERVAN_CHECK(dx.numel() == x.numel() && dout.numel() == x.numel() && w.numel() == C && dw.numel() == C &&
                   rstd.numel() == N,
               "rmsnorm backward shapes: x " + shape_str(x.shape()) + ", dx " + shape_str(dx.shape()) +
                   ", dout " + shape_str(dout.shape()));
  KERVAN_CHECK(!overlaps(dx, dout) && !overlaps(dx, x), "rmsnorm backward: dx aliases dout or x");
  const float* px = x.data<float>();
  const float* pd = dout.data<float>();
  const float* pw = w.data<float>();
  const float* pr = rstd.data<float>();
  float* pdx = dx.data<float>();
  float* pdw = dw.data<float>();
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = px + n * C;
      const float* dr = pd + n * C;
      const float r = pr[n];
      float gx_mean = 0.0f;
      for (int64_t c = 0; c < C; ++c) gx_mean += dr[c] * pw[c] * xr[c] * r;
      gx_mean /= C;
      float* o = pdx + n * C;
      for (int64_t c = 0; c < C; ++c) o[c] = r * (dr[c] * pw[c] - xr[c] * r * gx_mean);
    }
    // dw: columns split over threads, rows summed in order (deterministic)
    int64_t c0, c1;
    chunk_range(C, omp_get_num_threads(), omp_get_thread_num(), c0, c1);
    std::vector<float> aw(c1 - c0, 0.0f);
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = px + n * C;
      const float* dr = pd + n * C;
      const float r = pr[n];
      for (int64_t c = c0; c < c1; ++c) aw[c - c0] += dr[c] * xr[c] * r;
    }
    for (int64_t c = c0; c < c1; ++c) pdw[c] += aw[c - c0];
  }
}

}  // namespace kervan
