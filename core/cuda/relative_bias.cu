// T5's relative position bias (twin of core/cpu/relative_bias.cpp):
//   bias[h, i, j] = table[buckets[i, j], h]
//   dtable[k, h] += sum over (i, j) with buckets[i, j] == k of dbias[h, i, j]
// Backward gives each (k, h) one thread that walks every (i, j) in order: deterministic and
// atomic-free, at the price of reading the buckets once per table entry (tables are small: 32
// buckets x the heads).
#include "core/cuda/backend_impl.h"

namespace kervan {

using namespace cuda;

namespace {
void check_shapes(const Tensor& bias, const Tensor& table, const Tensor& buckets) {
  KERVAN_CHECK(table.ndim() == 2 && buckets.ndim() == 2 && bias.numel() == table.dim(1) * buckets.numel(),
               "relative bias shapes: table " + shape_str(table.shape()) + ", buckets " +
                   shape_str(buckets.shape()) + ", bias " + shape_str(bias.shape()));
}

__global__ void rel_bias_forward_kernel(float* bias, const float* table, const int32_t* buckets, int64_t n,
                                        int64_t NH, int64_t NB) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= NH * n) return;
  const int64_t h = i / n, ij = i % n;
  const int32_t k = buckets[ij];
  KERVAN_DEVICE_ASSERT(k >= 0 && k < NB);
  bias[i] = table[static_cast<int64_t>(k) * NH + h];
}

__global__ void rel_bias_backward_kernel(float* dtable, const float* dbias, const int32_t* buckets, int64_t n,
                                         int64_t NH, int64_t NB) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= NB * NH) return;
  const int64_t k = e / NH, h = e % NH;
  float s = 0.0f;
  for (int64_t ij = 0; ij < n; ++ij)
    if (buckets[ij] == k) s += dbias[h * n + ij];
  dtable[e] += s;
}
}  // namespace

void CudaBackend::relative_bias_forward(Tensor& bias, const Tensor& table, const Tensor& buckets) {
  check_shapes(bias, table, buckets);
  const int64_t NB = table.dim(0), NH = table.dim(1), n = buckets.numel();
  if (NH * n == 0) return;
  rel_bias_forward_kernel<<<blocks_for(NH * n, 256), 256, 0, stream()>>>(
      bias.data<float>(), table.data<float>(), buckets.data<int32_t>(), n, NH, NB);
  check_launch("relative_bias_forward",
               "table " + shape_str(table.shape()) + ", buckets " + shape_str(buckets.shape()));
}

void CudaBackend::relative_bias_backward(Tensor& dtable, const Tensor& dbias, const Tensor& buckets) {
  check_shapes(dbias, dtable, buckets);
  const int64_t NB = dtable.dim(0), NH = dtable.dim(1), n = buckets.numel();
  if (NB * NH == 0) return;
  rel_bias_backward_kernel<<<blocks_for(NB * NH, 64), 64, 0, stream()>>>(
      dtable.data<float>(), dbias.data<float>(), buckets.data<int32_t>(), n, NH, NB);
  check_launch("relative_bias_backward",
               "dtable " + shape_str(dtable.shape()) + ", buckets " + shape_str(buckets.shape()));
}

}  // namespace kervan
