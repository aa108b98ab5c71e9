#pragma once
#include <vector>

#include "core/parameters.h"
#include "core/tp_group.h"
#include "parallel/communicator.h"

namespace kervan {

// The model's view (core/tp_group.h) of a tensor-parallel Communicator: the ranks of one
// data-parallel replica (ProcessGrid: same dp_rank). Collectives are blocking.
class CommunicatorTpGroup final : public TpGroup {
 public:
  explicit CommunicatorTpGroup(Communicator& comm) : comm_(comm) {}
  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  void all_reduce_sum(Tensor& t) override { comm_.all_reduce(t, ReduceOp::Sum); }
  void all_reduce_max(Tensor& t) override { comm_.all_reduce(t, ReduceOp::Max); }
  void all_reduce_avg(Tensor& t) override { comm_.all_reduce(t, ReduceOp::Avg); }
  void all_gather(Tensor& out, const Tensor& in) override { comm_.all_gather(out, in); }

 private:
  Communicator& comm_;
};

// The global tensor of one parameter, flat and row-major, assembled from every rank's shard
// (Parameter::sharding); a replicated parameter is returned as this rank holds it. Every rank of
// `tp` must call it for the same parameter (an all-gather).
std::vector<float> gather_global(Backend& be, const Parameter& p, Communicator& tp);

}  // namespace kervan
