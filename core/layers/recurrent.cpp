#include "core/layers/recurrent.h"

#include <cmath>

namespace kervan {

namespace {
// Time step t of a time-major [T, B, W] tensor, as [B, W].
Tensor step(const Tensor& t, int64_t i) {
  return t.rows(i, i + 1).view({t.dim(1), t.dim(2)});
}
Tensor flat(const Tensor& t) {
  return t.view({t.dim(0) * t.dim(1), t.dim(2)});
}
}  // namespace

int recurrent_gates(RecurrentCell cell) {
  return cell == RecurrentCell::Rnn ? 1 : cell == RecurrentCell::Lstm ? 4 : 3;
}

const char* recurrent_cell_name(RecurrentCell cell) {
  return cell == RecurrentCell::Rnn ? "rnn" : cell == RecurrentCell::Lstm ? "lstm" : "gru";
}

int64_t RecurrentLayer::num_params(RecurrentCell cell, int64_t in, int64_t hidden) {
  const int64_t GH = recurrent_gates(cell) * hidden;
  return GH * (in + hidden) + 2 * GH;
}

RecurrentLayer::RecurrentLayer(ParameterSet& params, const std::string& name, RecurrentCell cell, int64_t in,
                               int64_t hidden)
    : cell_(cell),
      in_(in),
      H_(hidden),
      w_ih_(params.declare(name + ".weight_ih", {recurrent_gates(cell) * hidden, in},
                           {Init::Kind::Normal, 1.0f / std::sqrt(3.0f * static_cast<float>(hidden))}, true)),
      w_hh_(params.declare(name + ".weight_hh", {recurrent_gates(cell) * hidden, hidden},
                           {Init::Kind::Normal, 1.0f / std::sqrt(3.0f * static_cast<float>(hidden))}, true)),
      b_ih_(params.declare(name + ".bias_ih", {recurrent_gates(cell) * hidden}, {Init::Kind::Zeros}, false)),
      b_hh_(params.declare(name + ".bias_hh", {recurrent_gates(cell) * hidden}, {Init::Kind::Zeros}, false)) {
}

void RecurrentLayer::forward(Backend& be, RecurrentSaved& s, RecurrentScratch& scratch,
                             const Tensor& x) const {
  const int64_t T = x.dim(0);
  Tensor xg = flat(s.xg);
  be.matmul(xg, flat(x), false, w_ih_.value, true, 1.0f, 0.0f);
  be.add_bias(xg, b_ih_.value);
  const bool lstm = cell_ == RecurrentCell::Lstm;
  Tensor none;
  for (int64_t t = 0; t < T; ++t) {
    const Tensor h_prev = step(s.hs, t);
    be.matmul(scratch.hg, h_prev, false, w_hh_.value, true, 1.0f, 0.0f);
    Tensor h = step(s.hs, t + 1);
    Tensor c = lstm ? step(s.cs, t + 1) : none;
    Tensor g = cell_ == RecurrentCell::Rnn ? none : step(s.gates, t);
    be.recurrent_step_forward(cell_, h, c, g, step(s.xg, t), scratch.hg, b_hh_.value, h_prev,
                              lstm ? step(s.cs, t) : none);
  }
}

void RecurrentLayer::backward(Backend& be, Tensor* dx, const Tensor& dy, const Tensor& x,
                              const RecurrentSaved& s, RecurrentScratch& scratch,
                              std::vector<double>* dh_norms) const {
  const int64_t T = x.dim(0);
  const bool lstm = cell_ == RecurrentCell::Lstm, gru = cell_ == RecurrentCell::Gru;
  Tensor& dgh_all = gru ? scratch.dgh : scratch.dgx;
  Tensor none;
  for (int64_t t = T - 1; t >= 0; --t) {
    const Tensor dy_t = step(dy, t);
    if (dh_norms) {
      be.add(scratch.tmp, scratch.dh, dy_t);
      dh_norms->push_back(std::sqrt(be.sum_squares(scratch.tmp)));
    }
    Tensor dgx = step(scratch.dgx, t), dgh = step(dgh_all, t);
    be.recurrent_step_backward(cell_, dgx, dgh, scratch.dh, lstm ? scratch.dc : none, dy_t,
                               cell_ == RecurrentCell::Rnn ? none : step(s.gates, t), step(s.hs, t + 1),
                               step(s.hs, t), lstm ? step(s.cs, t + 1) : none, lstm ? step(s.cs, t) : none);
    be.matmul(scratch.dh, dgh, false, w_hh_.value, false, 1.0f, 1.0f);  // d(h_{t-1}) += dgh W_hh
  }
  // Weight gradients over all steps at once: dW_ih += dgx^T x, dW_hh += dgh^T h_{0..T-1}.
  const Tensor dgx = flat(scratch.dgx.rows(0, T)), dgh = flat(dgh_all.rows(0, T));
  be.matmul(w_ih_.grad, dgx, true, flat(x), false, 1.0f, 1.0f);
  be.bias_backward(b_ih_.grad, dgx);
  be.matmul(w_hh_.grad, dgh, true, flat(s.hs.rows(0, T)), false, 1.0f, 1.0f);
  be.bias_backward(b_hh_.grad, dgh);
  if (dx) {
    Tensor dxf = flat(*dx);
    be.matmul(dxf, dgx, false, w_ih_.value, false, 1.0f, 0.0f);
  }
}

}  // namespace kervan
