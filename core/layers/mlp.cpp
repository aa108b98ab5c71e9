#include "core/layers/mlp.h"

namespace kervan {

Mlp::Mlp(ParameterSet& params, const std::string& name, int64_t dim, int64_t hidden, float init_std,
         float proj_std, const MlpOptions& opt, TpGroup* tp)
    : opt_(opt),
      c_fc_(params, name + ".c_fc", dim, opt.gated ? 2 * hidden : hidden, init_std, opt.bias,
            {TpSplit::Kind::Column, tp, opt.gated ? 2 : 1}),
      c_proj_(params, name + ".c_proj", hidden, dim, proj_std, opt.bias, {TpSplit::Kind::Row, tp}) {}

void Mlp::forward(Backend& be, Tensor& y, MlpSaved& saved, const Tensor& x) const {
  c_fc_.forward(be, saved.fc, x);
  if (opt_.gated)
    be.gated_activation_forward(saved.act, saved.fc, opt_.act);
  else
    be.activation_forward(saved.act, saved.fc, opt_.act);
  c_proj_.forward(be, y, saved.act);
}

void Mlp::backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x, const MlpSaved& saved,
                   MlpScratch& scratch) const {
  c_proj_.backward(be, &scratch.dhidden, dy, saved.act);
  if (opt_.gated) {
    be.gated_activation_backward(scratch.dfc, saved.fc, scratch.dhidden, opt_.act);
    c_fc_.backward(be, &dx, scratch.dfc, x);
  } else {
    be.activation_backward(scratch.dhidden, saved.fc, scratch.dhidden, opt_.act);
    c_fc_.backward(be, &dx, scratch.dhidden, x);
  }
}

}  // namespace kervan
