#include "core/layers/linear.h"

namespace kervan {

namespace {
Tensor as_rows(const Tensor& t) { return t.view({t.numel() / t.dim(-1), t.dim(-1)}); }
}  // namespace

Linear::Linear(ParameterSet& params, const std::string& name, int64_t in, int64_t out, float init_std,
               bool bias)
    : in_(in),
      out_(out),
      weight_(params.declare(name + ".weight", {out, in}, {Init::Kind::Normal, init_std}, true)),
      bias_(bias ? &params.declare(name + ".bias", {out}, {Init::Kind::Zeros}, false) : nullptr) {}

void Linear::forward(Backend& be, Tensor& y, const Tensor& x) const {
  Tensor y2 = as_rows(y);
  be.matmul(y2, as_rows(x), false, weight_.value, true, 1.0f, 0.0f);
  if (bias_) be.add_bias(y2, bias_->value);
}

void Linear::backward(Backend& be, Tensor* dx, const Tensor& dy, const Tensor& x) const {
  const Tensor dy2 = as_rows(dy);
  be.matmul(weight_.grad, dy2, true, as_rows(x), false, 1.0f, 1.0f);
  if (bias_) be.bias_backward(bias_->grad, dy2);
  if (dx) {
    Tensor dx2 = as_rows(*dx);
    be.matmul(dx2, dy2, false, weight_.value, false, 1.0f, 0.0f);
  }
}

}  // namespace kervan
