#include "core/layers/linear.h"

#include "core/error.h"

namespace kervan {

namespace {
Tensor as_rows(const Tensor& t) { return t.view({t.numel() / t.dim(-1), t.dim(-1)}); }

int64_t local_size(int64_t n, int parts, const std::string& what) {
  KERVAN_CHECK(n % parts == 0, what + " does not divide by the tensor-parallel size");
  return n / parts;
}

Sharding weight_sharding(const TpSplit& s) {
  const int p = s.parts();
  if (p == 1) return {};
  const int k = s.group->rank();
  return s.kind == TpSplit::Kind::Column ? Sharding::rows(p, k, s.groups) : Sharding::cols(p, k);
}
}  // namespace

Linear::Linear(ParameterSet& params, const std::string& name, int64_t in, int64_t out, float init_std,
               bool bias, TpSplit split)
    : in_(split.parts() > 1 && split.kind == TpSplit::Kind::Row ? local_size(in, split.parts(), name) : in),
      out_(split.parts() > 1 && split.kind == TpSplit::Kind::Column ? local_size(out, split.parts(), name)
                                                                    : out),
      split_(split),
      weight_(params.declare(name + ".weight", {out_, in_}, {Init::Kind::Normal, init_std}, true,
                             weight_sharding(split))),
      bias_(bias ? &params.declare(name + ".bias", {out_}, {Init::Kind::Zeros}, false,
                                   split.kind == TpSplit::Kind::Column ? weight_sharding(split) : Sharding{})
                 : nullptr) {
  if (split_.parts() == 1) split_.kind = TpSplit::Kind::None;
}

void Linear::forward(Backend& be, Tensor& y, const Tensor& x) const {
  Tensor y2 = as_rows(y);
  be.matmul(y2, as_rows(x), false, weight_.value, true, 1.0f, 0.0f);
  if (split_.kind == TpSplit::Kind::Row) split_.group->all_reduce_sum(y2);
  if (bias_) be.add_bias(y2, bias_->value);
}

void Linear::backward(Backend& be, Tensor* dx, const Tensor& dy, const Tensor& x) const {
  const Tensor dy2 = as_rows(dy);
  Tensor dx2 = dx ? as_rows(*dx) : Tensor();
  be.linear_backward(weight_.grad, dx ? &dx2 : nullptr, dy2, as_rows(x), weight_.value, 1.0f, 1.0f);
  if (bias_) be.bias_backward(bias_->grad, dy2);
  if (dx && split_.kind == TpSplit::Kind::Column) split_.group->all_reduce_sum(dx2);
}

}  // namespace kervan
