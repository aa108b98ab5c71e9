#include "core/layers/rmsnorm.h"

namespace kervan {

RmsNorm::RmsNorm(ParameterSet& params, const std::string& name, int64_t dim, float eps)
    : weight_(params.declare(name + ".weight", {dim}, {Init::Kind::Ones}, false)), eps_(eps) {}

void RmsNorm::forward(Backend& be, Tensor& y, Tensor& rstd, const Tensor& x) const {
  be.rmsnorm_forward(y, rstd, x, weight_.value, eps_);
}

void RmsNorm::backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& rstd) const {
  be.rmsnorm_backward(dx, weight_.grad, dy, x, weight_.value, rstd);
}

}  // namespace kervan
