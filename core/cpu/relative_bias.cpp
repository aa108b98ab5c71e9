// T5's relative position bias, looked up from a [NB, NH] table by bucket:
//   bias[h, i, j] = table[buckets[i, j], h]
//   dtable[k, h] += sum over (i, j) with buckets[i, j] == k of dbias[h, i, j]
// Backward splits heads over threads; each head's sums run in (i, j) order (deterministic).
#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

namespace {
void check_shapes(const Tensor& bias, const Tensor& table, const Tensor& buckets) {
  KERVAN_CHECK(table.ndim() == 2 && buckets.ndim() == 2 && bias.numel() == table.dim(1) * buckets.numel(),
               "relative bias shapes: table " + shape_str(table.shape()) + ", buckets " +
                   shape_str(buckets.shape()) + ", bias " + shape_str(bias.shape()));
}
}  // namespace

void CpuBackend::relative_bias_forward(Tensor& bias, const Tensor& table, const Tensor& buckets) {
  check_shapes(bias, table, buckets);
  const int64_t NB = table.dim(0), NH = table.dim(1), n = buckets.numel();
  const float* pt = table.data<float>();
  const int32_t* pk = buckets.data<int32_t>();
  float* pb = bias.data<float>();
  for (int64_t i = 0; i < n; ++i) KERVAN_CHECK(pk[i] >= 0 && pk[i] < NB, "relative bias bucket out of range");
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t h = 0; h < NH; ++h)
    for (int64_t i = 0; i < n; ++i) pb[h * n + i] = pt[pk[i] * NH + h];
}

void CpuBackend::relative_bias_backward(Tensor& dtable, const Tensor& dbias, const Tensor& buckets) {
  check_shapes(dbias, dtable, buckets);
  const int64_t NH = dtable.dim(1), n = buckets.numel();
  const int32_t* pk = buckets.data<int32_t>();
  const float* pd = dbias.data<float>();
  float* pt = dtable.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t h = 0; h < NH; ++h)
    for (int64_t i = 0; i < n; ++i) pt[pk[i] * NH + h] += pd[h * n + i];
}

}  // namespace kervan
