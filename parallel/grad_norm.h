#pragma once
#include "core/parameters.h"
#include "parallel/communicator.h"

namespace kervan {

// The L2 norm of a model's whole gradient, from the part of it this rank holds, the same value on
// every rank of the job. `grads` holds elements [flat_begin, flat_begin + grads.numel()) of the
// parameters' flat layout (all of it, or a ZeRO-1 chunk). With a tensor-parallel group `tp`,
// a parameter's values there are either this rank's shard or a replica that every rank of the
// group holds alike:
//   ||g||^2 = sum over tp (and over `dp`, when the ranks of dp hold disjoint chunks)
//               of  sum_pieces w * |piece|^2,   w = 1 for a shard, 1/tp for a replica,
// so every element counts once. Squares are summed in double, and the partial sums travel in
// double, so the norm does not depend on the layout beyond double rounding.
// Pass null for a group the gradient is not spread over.
double global_grad_norm(Backend& be, const ParameterSet& params, const Tensor& grads, int64_t flat_begin,
                        Communicator* tp, Communicator* dp);

}  // namespace kervan
