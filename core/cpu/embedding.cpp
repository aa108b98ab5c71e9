// Token + position embedding:  out[b,t,:] = wte[tok[b,t], :] + wpe[t, :]
#include <omp.h>

#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

void CpuBackend::embedding_forward(Tensor& out, const Tensor& tokens, const Tensor& wte,
                                   const Tensor& wpe) {
  const int64_t B = tokens.dim(0), T = tokens.dim(1), C = wte.dim(1);
  KERVAN_CHECK(out.numel() == B * T * C && wpe.dim(0) >= T, "embedding shapes");
  const int32_t* tok = tokens.data<int32_t>();
  const float* pwte = wte.data<float>();
  const float* pwpe = wpe.data<float>();
  float* po = out.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const float* e = pwte + static_cast<int64_t>(tok[bt]) * C;
    const float* p = pwpe + (bt % T) * C;
    float* o = po + bt * C;
    for (int64_t c = 0; c < C; ++c) o[c] = e[c] + p[c];
  }
}

// dwte is a scatter-add (tokens repeat), so threads split the channels, not the tokens: each
// element of dwte is then summed by one thread in token order, which keeps it deterministic.
void CpuBackend::embedding_backward(Tensor& dwte, Tensor& dwpe, const Tensor& dout,
                                    const Tensor& tokens) {
  const int64_t B = tokens.dim(0), T = tokens.dim(1), C = dwte.dim(1);
  const int32_t* tok = tokens.data<int32_t>();
  const float* pd = dout.data<float>();
  float* pwte = dwte.data<float>();
  float* pwpe = dwpe.data<float>();
#pragma omp parallel
  {
    int64_t c0, c1;
    chunk_range(C, omp_get_num_threads(), omp_get_thread_num(), c0, c1);
    for (int64_t bt = 0; bt < B * T; ++bt) {
      const float* d = pd + bt * C;
      float* e = pwte + static_cast<int64_t>(tok[bt]) * C;
      float* p = pwpe + (bt % T) * C;
      for (int64_t c = c0; c < c1; ++c) {
        e[c] += d[c];
        p[c] += d[c];
      }
    }
  }
}

}  // namespace kervan
