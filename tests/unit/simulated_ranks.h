#pragma once
// Every rank of a (DP, TP, ZeRO-1) layout, built in one process. Building a model shard and its
// TrainStep and asking for their state needs no collective, so each rank gets communicators that
// only know their rank and size; any collective on them is a bug in the test.
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/manifest.h"
#include "core/error.h"
#include "core/model/gpt.h"
#include "core/rng.h"
#include "parallel/tensor_parallel.h"
#include "parallel/train_step.h"

namespace kervan::test {

class RankOnlyCommunicator final : public Communicator {
 public:
  RankOnlyCommunicator(int rank, int size) : rank_(rank), size_(size), ranks_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::vector<int>& world_ranks() const override { return ranks_; }
  std::unique_ptr<CommHandle> all_reduce_async(Tensor&, ReduceOp) override { return none(); }
  std::unique_ptr<CommHandle> reduce_scatter_async(Tensor&, const Tensor&, ReduceOp) override {
    return none();
  }
  std::unique_ptr<CommHandle> all_gather_async(Tensor&, const Tensor&) override { return none(); }
  std::unique_ptr<CommHandle> broadcast_async(Tensor&, int) override { return none(); }
  void barrier() override { none(); }

 private:
  static std::unique_ptr<CommHandle> none() {
    KERVAN_CHECK(false, "a simulated rank cannot run collectives");
    return nullptr;
  }
  int rank_, size_;
  std::vector<int> ranks_;
};

struct SimulatedRank {
  WriterLayout layout;
  std::unique_ptr<RankOnlyCommunicator> dp, tp;
  std::unique_ptr<CommunicatorTpGroup> tp_group;
  std::unique_ptr<GPT> model;
  std::unique_ptr<TrainStep> train_step;

  StateDict state() {
    StateDict d;
    train_step->state(d);
    return d;
  }
};

// The ranks of DP = dp x TP = tp, world rank = dp_rank * tp + tp_rank (ProcessGrid's order).
inline std::vector<std::unique_ptr<SimulatedRank>> simulate_layout(Backend& be, const GPTConfig& config,
                                                                   int dp, int tp, bool zero1) {
  std::vector<std::unique_ptr<SimulatedRank>> ranks;
  for (int r = 0; r < dp * tp; ++r) {
    auto s = std::make_unique<SimulatedRank>();
    s->layout = {dp * tp, dp, tp, zero1, r, r / tp, r % tp};
    s->dp = std::make_unique<RankOnlyCommunicator>(r / tp, dp);
    s->tp = std::make_unique<RankOnlyCommunicator>(r % tp, tp);
    if (tp > 1) s->tp_group = std::make_unique<CommunicatorTpGroup>(*s->tp);
    s->model = std::make_unique<GPT>(config, be, 1, config.max_seq_len, s->tp_group.get());
    s->train_step =
        std::make_unique<TrainStep>(*s->model, AdamWConfig{}, StepLayout{s->dp.get(), s->tp.get(), zero1});
    ranks.push_back(std::move(s));
  }
  return ranks;
}

// The value a test stores at global element `g` of tensor `name`: distinct per tensor and element.
inline float value_at(const std::string& name, int64_t g) {
  return normal_at(stream_key(5, name), static_cast<uint64_t>(g));
}

// Writes value_at into every tensor of `state` (through its views, i.e. into the rank's memory).
inline void fill_known_values(Backend& be, const StateDict& state) {
  for (const StateTensor& t : state.tensors) {
    std::vector<float> host(t.slice.flat_count);
    for (int64_t i = 0; i < t.slice.flat_count; ++i) host[i] = value_at(t.name, t.slice.global_index(i));
    Tensor view = t.data;
    be.copy_from_host(view, host.data());
  }
}

}  // namespace kervan::test
