#pragma once
#include <string>
#include <vector>

#include "core/parameters.h"

namespace kervan {

// Gates per cell: RNN 1, LSTM 4, GRU 3.
int recurrent_gates(RecurrentCell cell);
// "rnn", "lstm", "gru".
const char* recurrent_cell_name(RecurrentCell cell);

// What one recurrent layer keeps from forward for backward, time-major: row block t of every
// tensor is time step t's [B, ...] rows.
struct RecurrentSaved {
  Tensor xg;     // [T, B, G*H]  x W_ih^T + b_ih, all steps (one GEMM)
  Tensor hs;     // [T + 1, B, H] the initial state h_0, then the outputs h_1 .. h_T
  Tensor cs;     // [T + 1, B, H] LSTM: c_0, then the cell states (other cells: unused)
  Tensor gates;  // [T, B, 4H]   LSTM i|f|g|o; GRU r|z|n|hn (RNN: unused)
};

// Scratch of one layer's step loop, shareable between layers.
struct RecurrentScratch {
  Tensor hg;   // [B, G*H] the step's h_prev W_hh^T
  Tensor dgx;  // [T, B, G*H] d(loss)/d(xg)
  Tensor dgh;  // [T, B, G*H] GRU: d(loss)/d(h W_hh^T + b_hh) (RNN, LSTM: unused, equal to dgx)
  Tensor dh;   // [B, H]
  Tensor dc;   // [B, H] LSTM
  Tensor tmp;  // [B, H] for the per-step gradient norms
};

// One recurrent layer with PyTorch's parameters and equations (nn.RNN with tanh, nn.LSTM,
// nn.GRU; their weight_ih_l0 etc. load as is):
//   weight_ih [G*H, in], weight_hh [G*H, H], bias_ih [G*H], bias_hh [G*H]
//   RNN   h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
//   LSTM  i|f|g|o = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh  (then sigma, sigma, tanh, sigma)
//         c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)
//   GRU   r|z = sigma(W_ir|iz x_t + b_ir|iz + W_hr|hz h_{t-1} + b_hr|hz)
//         n = tanh(W_in x_t + b_in + r (W_hn h_{t-1} + b_hn)),  h_t = (1 - z) n + z h_{t-1}
// The two biases are kept apart as PyTorch has them: they add up everywhere except GRU's n gate,
// where r multiplies b_hn but not b_in.
//
// Forward: the input projections of all T steps are one GEMM ([T*B, in] x [in, G*H]); each step
// then does one small GEMM h_{t-1} W_hh^T ([B, H] x [H, G*H]) and one fused gate kernel.
// Backward through time: per step the fused gate-gradient kernel and one GEMM dgh W_hh for
// d(h_{t-1}); after the loop, dW_ih, dW_hh, the biases and dx are each one GEMM (or column sum)
// over all steps.
// Initialisation: weights N(0, 1/sqrt(3H)) (the std of PyTorch's U(-1/sqrt(H), 1/sqrt(H))), biases
// zero.
class RecurrentLayer {
 public:
  RecurrentLayer(ParameterSet& params, const std::string& name, RecurrentCell cell, int64_t in,
                 int64_t hidden);

  // x [T, B, in]. On entry s.hs row block 0 (and, LSTM, s.cs's) holds the initial state.
  void forward(Backend& be, RecurrentSaved& s, RecurrentScratch& scratch, const Tensor& x) const;
  // dy [T, B, H] d(loss)/d(outputs). On entry scratch.dh (LSTM: and dc) holds d(loss)/d(h_T)
  // (d(c_T)) from beyond the window, usually zeros; on exit d(loss)/d(h_0) (d(c_0)). dx
  // [T, B, in] is overwritten (null: not needed); parameter gradients accumulate. With dh_norms,
  // the L2 norm of d(loss)/d(h_t) over the batch, for t = T .. 1, is appended (the study's
  // vanishing-gradient measure; costs one reduction per step).
  void backward(Backend& be, Tensor* dx, const Tensor& dy, const Tensor& x, const RecurrentSaved& s,
                RecurrentScratch& scratch, std::vector<double>* dh_norms = nullptr) const;

  RecurrentCell cell() const { return cell_; }
  int64_t hidden() const { return H_; }
  // Parameters of one layer: G*H*(in + H) + 2*G*H.
  static int64_t num_params(RecurrentCell cell, int64_t in, int64_t hidden);

 private:
  RecurrentCell cell_;
  int64_t in_, H_;
  Parameter &w_ih_, &w_hh_, &b_ih_, &b_hh_;
};

}  // namespace kervan
