// AdamW (Loshchilov & Hutter), in the same operation order as torch.optim.AdamW:
//   g = grad * grad_scale
//   p = p * (1 - lr * wd)
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//   p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
#include <cmath>

#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

void CpuBackend::adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& st) {
  KERVAN_CHECK(param.numel() == grad.numel() && m.numel() == param.numel() && v.numel() == param.numel(),
               "adamw sizes");
  KERVAN_CHECK(!overlaps(param, grad) && !overlaps(param, m) && !overlaps(param, v) && !overlaps(m, v),
               "adamw: parameter, gradient and moments must be distinct memory");
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* pm = m.data<float>();
  float* pv = v.data<float>();
  const int64_t n = param.numel();
  const float decay = 1.0f - st.lr * st.weight_decay;
  const float step_size = st.lr / st.bias_correction1;
  const float sqrt_bc2 = std::sqrt(st.bias_correction2);
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * st.grad_scale;
    const float mi = st.beta1 * pm[i] + (1.0f - st.beta1) * gi;
    const float vi = st.beta2 * pv[i] + (1.0f - st.beta2) * gi * gi;
    pm[i] = mi;
    pv[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) / sqrt_bc2 + st.eps);
  }
}

}  // namespace kervan
