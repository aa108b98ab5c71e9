#pragma once
#include "core/parameters.h"
#include "core/tp_group.h"

namespace kervan {

// How a Linear is split across a tensor-parallel group of p ranks (Megatron-LM), rank k of p:
//   Column: W = [W_1; ..; W_p] split by output features (rows of the [out, in] weight, and the
//           bias alike); from the replicated X rank k computes Y_k = X W_k^T + b_k, no
//           communication. Backward: dX = sum_k dY_k W_k, all-reduced over the group (the
//           conjugate of the identity that feeds X to every rank).
//   Row:    W = [W_1 .. W_p] split by input features (columns); rank k holds the matching slice
//           X_k of the input (the output of a Column layer) and computes the partial X_k W_k^T;
//           Y = sum_k X_k W_k^T (all-reduce) + b, the bias replicated and added once after.
//           Backward: dX_k = dY W_k, dW_k += dY^T X_k, db += sum_n dY (the same on every rank).
// `groups` > 1 splits each of `groups` equal blocks of the output features (fused q|k|v).
struct TpSplit {
  enum class Kind { None, Column, Row } kind = Kind::None;
  TpGroup* group = nullptr;
  int groups = 1;
  int parts() const { return group && kind != Kind::None ? group->size() : 1; }
};

// Fully connected layer, weight stored [out, in] as in PyTorch:
//   forward   Y = X W^T + b                  X [N, in], Y [N, out]
//   backward  dW += dY^T X,  db += sum_n dY,  dX = dY W
// `in` and `out` are the global sizes; under a TpSplit the parameters hold this rank's shard.
class Linear {
 public:
  Linear(ParameterSet& params, const std::string& name, int64_t in, int64_t out, float init_std,
         bool bias = true, TpSplit split = {});
  void forward(Backend& be, Tensor& y, const Tensor& x) const;
  // dx may be null when the input needs no gradient; otherwise it is overwritten.
  void backward(Backend& be, Tensor* dx, const Tensor& dy, const Tensor& x) const;

  // Local sizes (this rank's shard).
  int64_t in() const { return in_; }
  int64_t out() const { return out_; }
  // The weight, e.g. to give a fused weight's blocks their own initial std before initialize().
  Parameter& weight() const { return weight_; }

 private:
  int64_t in_, out_;
  TpSplit split_;
  Parameter& weight_;
  Parameter* bias_;
};

}  // namespace kervan
