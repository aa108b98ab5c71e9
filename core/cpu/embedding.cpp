// Token + position embedding:  out[b,t,:] = wte[tok[b,t], :] + wpe[t, :]; row gathers and their
// gradient, the scatter-add.
#include <omp.h>

#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

void CpuBackend::embedding_forward(Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor& wpe) {
  const int64_t B = tokens.dim(0), T = tokens.dim(1), C = wte.dim(1);
  KERVAN_CHECK(
      tokens.ndim() == 2 && out.numel() == B * T * C && wpe.ndim() == 2 && wpe.dim(0) >= T && wpe.dim(1) == C,
      "embedding shapes: tokens " + shape_str(tokens.shape()) + ", wte " + shape_str(wte.shape()) + ", wpe " +
          shape_str(wpe.shape()) + ", out " + shape_str(out.shape()));
  const int32_t* tok = tokens.data<int32_t>();
  const float* pwte = wte.data<float>();
  const float* pwpe = wpe.data<float>();
  float* po = out.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const float* p = pwpe + (bt % T) * C;
    float* o = po + bt * C;
    if (tok[bt] < 0) {  // outside this rank's vocabulary shard: a zero row
      for (int64_t c = 0; c < C; ++c) o[c] = p[c];
      continue;
    }
    const float* e = pwte + static_cast<int64_t>(tok[bt]) * C;
    for (int64_t c = 0; c < C; ++c) o[c] = e[c] + p[c];
  }
}

void CpuBackend::gather_rows(Tensor& out, const Tensor& table, const Tensor& ids, bool accumulate) {
  const int64_t N = ids.numel(), C = table.dim(1);
  KERVAN_CHECK(table.ndim() == 2 && out.numel() == N * C,
               "gather_rows shapes: table " + shape_str(table.shape()) + ", ids " + shape_str(ids.shape()) +
                   ", out " + shape_str(out.shape()));
  KERVAN_CHECK(!overlaps(out, table), "gather_rows: out aliases the table");
  const int32_t* id = ids.data<int32_t>();
  const float* pt = table.data<float>();
  float* po = out.data<float>();
  const int64_t rows = table.dim(0);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* o = po + n * C;
    if (id[n] < 0) {
      if (!accumulate)
        for (int64_t c = 0; c < C; ++c) o[c] = 0.0f;
      continue;
    }
    KERVAN_CHECK(id[n] < rows, "gather_rows: id out of range");
    const float* r = pt + static_cast<int64_t>(id[n]) * C;
    if (accumulate)
      for (int64_t c = 0; c < C; ++c) o[c] += r[c];
    else
      for (int64_t c = 0; c < C; ++c) o[c] = r[c];
  }
}

// A scatter-add (ids repeat), so threads split the channels, not the rows: each element of the
// table is then summed by one thread in row order, which keeps it deterministic.
void CpuBackend::scatter_add_rows(Tensor& table, const Tensor& rows, const Tensor& ids, float scale) {
  const int64_t N = ids.numel(), C = table.dim(1);
  KERVAN_CHECK(rows.numel() == N * C, "scatter_add_rows shapes");
  KERVAN_CHECK(!overlaps(table, rows), "scatter_add_rows: the table aliases the rows");
  const int32_t* id = ids.data<int32_t>();
  const float* pr = rows.data<float>();
  float* pt = table.data<float>();
#pragma omp parallel
  {
    int64_t c0, c1;
    chunk_range(C, omp_get_num_threads(), omp_get_thread_num(), c0, c1);
    for (int64_t n = 0; n < N; ++n) {
      if (id[n] < 0) continue;
      const float* r = pr + n * C;
      float* e = pt + static_cast<int64_t>(id[n]) * C;
      for (int64_t c = c0; c < c1; ++c) e[c] += scale * r[c];
    }
  }
}

void CpuBackend::position_embedding_backward(Tensor& dwpe, const Tensor& dout) {
  KERVAN_CHECK(
      dout.ndim() == 3 && dwpe.ndim() == 2 && dwpe.dim(0) >= dout.dim(1) && dwpe.dim(1) == dout.dim(2),
      "position embedding backward shapes: dout " + shape_str(dout.shape()) + ", dwpe " +
          shape_str(dwpe.shape()));
  const int64_t B = dout.dim(0), T = dout.dim(1), C = dout.dim(2);
  const float* pd = dout.data<float>();
  float* pw = dwpe.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c) pw[t * C + c] += pd[(b * T + t) * C + c];
}

}  // namespace kervan
