#include "core/layers/mlp.h"

namespace kervan {

Mlp::Mlp(ParameterSet& params, const std::string& name, int64_t dim, int64_t hidden, float init_std,
         float proj_std, TpGroup* tp)
    : c_fc_(params, name + ".c_fc", dim, hidden, init_std, true, {TpSplit::Kind::Column, tp}),
      c_proj_(params, name + ".c_proj", hidden, dim, proj_std, true, {TpSplit::Kind::Row, tp}) {}

void Mlp::forward(Backend& be, Tensor& y, MlpSaved& saved, const Tensor& x) const {
  c_fc_.forward(be, saved.fc, x);
  be.gelu_forward(saved.fc_gelu, saved.fc);
  c_proj_.forward(be, y, saved.fc_gelu);
}

void Mlp::backward(Backend& be, Tensor& dx, const Tensor& dy, const Tensor& x, const MlpSaved& saved,
                   Tensor& dhidden) const {
  c_proj_.backward(be, &dhidden, dy, saved.fc_gelu);
  be.gelu_backward(dhidden, saved.fc, dhidden);
  c_fc_.backward(be, &dx, dhidden, x);
}

}  // namespace kervan
