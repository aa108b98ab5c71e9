// Under every layout this world size allows (DP x TP, with and without ZeRO-1), the slices that
// the ranks mark as written cover each global tensor of the training state exactly once: no
// element is lost, none is written twice. And a state round-trips on every rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include <map>

#include "core/cpu/cpu_backend.h"
#include "core/model/gpt.h"
#include "parallel/mpi_communicator.h"
#include "parallel/tensor_parallel.h"
#include "parallel/train_step.h"

namespace kervan {
namespace {

const GPTConfig kConfig{2, 4, 16, 50, 8};

struct Layout {
  int tp;
  bool zero;
};

class StateCoverage : public ::testing::TestWithParam<Layout> {
 protected:
  void SetUp() override {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  std::unique_ptr<MpiCommunicator> split(int color, const char* name) {
    MPI_Comm c;
    MPI_Comm_split(MPI_COMM_WORLD, color, rank_, &c);
    return std::make_unique<MpiCommunicator>(c, name, 60.0);
  }
  int rank_ = 0, size_ = 1;
  std::unique_ptr<Backend> be = make_cpu_backend();
};

TEST_P(StateCoverage, WritersCoverEveryGlobalTensorExactlyOnce) {
  const Layout layout = GetParam();
  if (size_ % layout.tp != 0) GTEST_SKIP() << "tp " << layout.tp << " does not divide " << size_;
  auto tp = split(rank_ / layout.tp, "tensor-parallel");  // TP innermost, as ProcessGrid
  auto dp = split(rank_ % layout.tp, "data-parallel");
  CommunicatorTpGroup tp_group(*tp);
  GPT model(kConfig, *be, 1, 8, layout.tp > 1 ? &tp_group : nullptr);
  model.init_weights(3);
  TrainStep step(model, AdamWConfig{}, {dp.get(), tp.get(), layout.zero, 4096});
  StateDict dict;
  step.state(dict);

  // Per global tensor (model/, optim/m/, optim/v/ of every parameter; a ZeRO-1 rank may hold no
  // piece of some), how many times this rank writes each element; summed over the world.
  std::map<std::string, std::vector<int>> counts;
  std::map<std::string, Shape> shapes;
  for (const Parameter& p : model.params().all())
    for (const char* prefix : {"model/", "optim/m/", "optim/v/"}) {
      shapes[prefix + p.name] = p.sharding.global_shape(p.shape);
      counts[prefix + p.name].resize(shape_numel(shapes[prefix + p.name]));
    }
  for (const StateTensor& t : dict.tensors) {
    ASSERT_EQ(shapes.at(t.name), t.slice.global_shape) << t.name;
    if (!t.writer) continue;
    for (int64_t i = 0; i < t.slice.flat_count; ++i) ++counts.at(t.name)[t.slice.global_index(i)];
  }
  for (auto& [name, c] : counts) {
    std::vector<int> total(c.size());
    MPI_Allreduce(c.data(), total.data(), static_cast<int>(c.size()), MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    for (size_t i = 0; i < total.size(); ++i)
      ASSERT_EQ(total[i], 1) << name << " " << shape_str(shapes[name]) << " element " << i << " (tp "
                             << layout.tp << ", zero " << layout.zero << ")";
  }
  // ZeRO-1 moments are chunks owned by this rank's replica; plain ones belong to every replica.
  for (const StateTensor& t : dict.tensors) {
    if (t.name.starts_with("optim/")) {
      EXPECT_EQ(t.replica, layout.zero && dp->size() > 1 ? dp->rank() : -1) << t.name;
    }
  }
}

TEST_P(StateCoverage, StateRoundTripsOnEveryRank) {
  const Layout layout = GetParam();
  if (size_ % layout.tp != 0) GTEST_SKIP();
  auto tp = split(rank_ / layout.tp, "tensor-parallel");
  auto dp = split(rank_ % layout.tp, "data-parallel");
  CommunicatorTpGroup tp_group(*tp);
  auto build = [&](uint64_t seed) {
    auto m = std::make_unique<GPT>(kConfig, *be, 1, 8, layout.tp > 1 ? &tp_group : nullptr);
    m->init_weights(seed);
    return m;
  };
  auto a = build(3), b = build(4);
  TrainStep sa(*a, AdamWConfig{}, {dp.get(), tp.get(), layout.zero, 4096});
  TrainStep sb(*b, AdamWConfig{}, {dp.get(), tp.get(), layout.zero, 4096});
  // One step so that the moments are not zero.
  std::vector<int32_t> x(8, 5), y(8, 9);
  a->params().zero_grad(*be);
  a->forward(x.data(), y.data(), 1, 8);
  sa.before_last_backward();
  a->backward(1.0f);
  sa.step(1e-2f, clip_factor(sa.reduce_gradients(), 1.0f));
  StateDict first, second;
  sa.state(first);
  sb.load_state(first);
  sb.state(second);
  ASSERT_EQ(first.tensors.size(), second.tensors.size());
  for (size_t i = 0; i < first.tensors.size(); ++i) {
    EXPECT_EQ(first.tensors[i].name, second.tensors[i].name);
    EXPECT_EQ(first.tensors[i].slice, second.tensors[i].slice);
    EXPECT_EQ(be->to_host<float>(first.tensors[i].data), be->to_host<float>(second.tensors[i].data))
        << first.tensors[i].name;
  }
  EXPECT_EQ(second.value<int64_t>("optim/step"), 1);
}

INSTANTIATE_TEST_SUITE_P(Layouts, StateCoverage,
                         ::testing::Values(Layout{1, false}, Layout{1, true}, Layout{2, false},
                                           Layout{2, true}, Layout{4, false}, Layout{4, true}),
                         [](const auto& info) {
                           return "Tp" + std::to_string(info.param.tp) + (info.param.zero ? "Zero1" : "");
                         });

}  // namespace
}  // namespace kervan
