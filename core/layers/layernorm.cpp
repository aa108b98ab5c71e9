#include "core/layers/layernorm.h"

namespace kervan {

LayerNorm::LayerNorm(ParameterSet& params, const std::string& name, int64_t dim, float eps)
    : weight_(params.declare(name + ".weight", {dim}, {Init::Kind::Ones}, false)),
      bias_(params.declare(name + ".bias", {dim}, {Init::Kind::Zeros}, false)),
      eps_(eps) {}

void LayerNorm::forward(Backend& be, Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x) const {
  be.layernorm_forward(y, mean, rstd, x, weight_.value, bias_.value, eps_);
}

void LayerNorm::backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& mean,
                         const Tensor& rstd) const {
  be.layernorm_backward(dx, weight_.grad, bias_.grad, dy, x, weight_.value, mean, rstd);
}

}  // namespace kervan
