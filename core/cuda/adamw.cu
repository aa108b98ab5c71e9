// AdamW in torch.optim.AdamW's operation order (twin of core/cpu/adamw.cpp), one thread per element:
//   g = grad * grad_scale;  p = p * (1 - lr * wd)
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//   p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
#include "core/cuda/backend_impl.h"

namespace kervan {

using namespace cuda;

namespace {
__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n, AdamWStep st,
                             float decay, float step_size, float sqrt_bc2) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float gi = g[i] * st.grad_scale;
  const float mi = st.beta1 * m[i] + (1.0f - st.beta1) * gi;
  const float vi = st.beta2 * v[i] + (1.0f - st.beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] * decay - step_size * mi / (sqrtf(vi) / sqrt_bc2 + st.eps);
}
}  // namespace

void CudaBackend::adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& st) {
  KERVAN_CHECK(param.numel() == grad.numel() && m.numel() == param.numel() && v.numel() == param.numel(),
               "adamw sizes");
  KERVAN_CHECK(!overlaps(param, grad) && !overlaps(param, m) && !overlaps(param, v) && !overlaps(m, v),
               "adamw: parameter, gradient and moments must be distinct memory");
  const int64_t n = param.numel();
  if (n == 0) return;
  adamw_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(
      param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), n, st,
      1.0f - st.lr * st.weight_decay, st.lr / st.bias_correction1, sqrtf(st.bias_correction2));
  check_launch("adamw_update", shape_str(param.shape()));
}

}  // namespace kervan
