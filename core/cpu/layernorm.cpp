// LayerNorm over the last dimension C, per row x:
//   mean = sum(x)/C, rstd = 1/sqrt(sum((x-mean)^2)/C + eps), xhat = (x-mean)*rstd
//   (eps: 1e-5 in GPT-2, 1e-12 in BERT)
//   out  = xhat * w + b
// Backward, with g = dout * w:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dw += dout * xhat,  db += dout
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

void CpuBackend::layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                                   const Tensor& b, float eps) {
  const auto [N, C] = rows_cols(x);
  KERVAN_CHECK(
      out.numel() == x.numel() && w.numel() == C && b.numel() == C && mean.numel() == N && rstd.numel() == N,
      "layernorm shapes: x " + shape_str(x.shape()) + ", out " + shape_str(out.shape()) + ", w " +
          shape_str(w.shape()) + ", mean " + shape_str(mean.shape()));
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  const float* pb = b.data<float>();
  float* po = out.data<float>();
  float* pm = mean.data<float>();
  float* pr = rstd.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = px + n * C;
    float s = 0.0f;
    for (int64_t c = 0; c < C; ++c) s += xr[c];
    const float m = s / C;
    float v = 0.0f;
    for (int64_t c = 0; c < C; ++c) v += (xr[c] - m) * (xr[c] - m);
    const float r = 1.0f / std::sqrt(v / C + eps);
    float* o = po + n * C;
    for (int64_t c = 0; c < C; ++c) o[c] = (xr[c] - m) * r * pw[c] + pb[c];
    pm[n] = m;
    pr[n] = r;
  }
}

void CpuBackend::layernorm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& dout, const Tensor& x,
                                    const Tensor& w, const Tensor& mean, const Tensor& rstd) {
  const auto [N, C] = rows_cols(x);
  KERVAN_CHECK(dx.numel() == x.numel() && dout.numel() == x.numel() && w.numel() == C && dw.numel() == C &&
                   db.numel() == C && mean.numel() == N && rstd.numel() == N,
               "layernorm backward shapes: x " + shape_str(x.shape()) + ", dx " + shape_str(dx.shape()) +
                   ", dout " + shape_str(dout.shape()));
  // dw and db are accumulated from dout after dx is written.
  KERVAN_CHECK(!overlaps(dx, dout) && !overlaps(dx, x), "layernorm backward: dx aliases dout or x");
  const float* px = x.data<float>();
  const float* pd = dout.data<float>();
  const float* pw = w.data<float>();
  const float* pm = mean.data<float>();
  const float* pr = rstd.data<float>();
  float* pdx = dx.data<float>();
  float* pdw = dw.data<float>();
  float* pdb = db.data<float>();
#pragma omp parallel
  {
    // dx: rows split over threads
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = px + n * C;
      const float* dr = pd + n * C;
      const float m = pm[n], r = pr[n];
      float g_mean = 0.0f, gx_mean = 0.0f;
      for (int64_t c = 0; c < C; ++c) {
        const float g = dr[c] * pw[c];
        g_mean += g;
        gx_mean += g * (xr[c] - m) * r;
      }
      g_mean /= C;
      gx_mean /= C;
      float* o = pdx + n * C;
      for (int64_t c = 0; c < C; ++c) {
        const float xhat = (xr[c] - m) * r;
        o[c] = r * (dr[c] * pw[c] - g_mean - xhat * gx_mean);
      }
    }
    // dw, db: columns split over threads, rows summed in order
    int64_t c0, c1;
    chunk_range(C, omp_get_num_threads(), omp_get_thread_num(), c0, c1);
    std::vector<float> aw(c1 - c0, 0.0f), ab(c1 - c0, 0.0f);
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = px + n * C;
      const float* dr = pd + n * C;
      const float m = pm[n], r = pr[n];
      for (int64_t c = c0; c < c1; ++c) {
        aw[c - c0] += dr[c] * (xr[c] - m) * r;
        ab[c - c0] += dr[c];
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      pdw[c] += aw[c - c0];
      pdb[c] += ab[c - c0];
    }
  }
}

}  // namespace kervan
