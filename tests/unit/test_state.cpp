// Named sharded state (core/state.h): slices placed in their global tensors, and the round trip
// state -> fresh component -> state of the model, the optimizer and the training step.
#include <gtest/gtest.h>

#include <set>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "core/model/gpt.h"
#include "core/rng.h"
#include "core/state.h"
#include "parallel/train_step.h"

namespace kervan {
namespace {

TEST(TensorSlice, GlobalIndexOfBoxesAndFlatParts) {
  // Columns [2, 5) of rows [1, 3) of a [4, 6] tensor.
  const TensorSlice box{{4, 6}, {1, 2}, {2, 3}, 0, 6};
  const std::vector<int64_t> want = {8, 9, 10, 14, 15, 16};
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(box.global_index(i), want[i]) << i;
  // Elements 2..5 of that box, as a ZeRO chunk would cut it.
  const TensorSlice part = box.part(2, 3);
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(part.global_index(i), want[2 + i]) << i;
  EXPECT_EQ(TensorSlice::whole({3, 5}).global_index(7), 7);
  EXPECT_EQ(part.describe(), "[1:3, 2:5] of [4, 6], elements 2..5");
}

// The boxes of every sharding cover exactly the elements Sharding::global_index maps to.
TEST(Sharding, BoxesAgreeWithGlobalIndex) {
  struct Case {
    Shape local;
    Sharding s;
  };
  const std::vector<Case> cases = {
      {{6, 4}, {}},                       // replicated
      {{6, 4}, Sharding::rows(3, 1)},     // vocabulary rows
      {{6, 4}, Sharding::rows(2, 1, 3)},  // fused q|k|v: 3 boxes
      {{4, 3}, Sharding::cols(4, 2)},     // row-parallel weight
      {{6}, Sharding::rows(2, 0, 3)},     // fused bias
  };
  for (const Case& c : cases) {
    std::vector<int64_t> from_boxes;
    for (const Sharding::LocalBox& b : c.s.boxes(c.local)) {
      EXPECT_EQ(b.local_begin, static_cast<int64_t>(from_boxes.size()));
      for (int64_t i = 0; i < b.slice.flat_count; ++i) from_boxes.push_back(b.slice.global_index(i));
    }
    ASSERT_EQ(static_cast<int64_t>(from_boxes.size()), shape_numel(c.local));
    for (int64_t i = 0; i < shape_numel(c.local); ++i)
      EXPECT_EQ(from_boxes[i], c.s.global_index(c.local, i)) << shape_str(c.local) << " element " << i;
  }
}

std::vector<float> host(Backend& be, const Tensor& t) {
  return be.to_host<float>(t);
}

// Everything a dict holds, as host data in a canonical order, for comparing two dicts.
std::map<std::string, std::vector<float>> contents(Backend& be, const StateDict& d) {
  std::map<std::string, std::vector<float>> out;
  for (const StateTensor& t : d.tensors) out[t.name + " " + t.slice.describe()] = host(be, t.data);
  return out;
}

class StateRoundTrip : public ::testing::Test {
 protected:
  void SetUp() override { set_host_threads(2); }
  // A model and its TrainStep after `steps` steps on random tokens.
  struct Trained {
    std::unique_ptr<GPT> model;
    std::unique_ptr<TrainStep> step;
  };
  Trained make(int steps) {
    Trained t{std::make_unique<GPT>(kConfig, *be, 2, 8), nullptr};
    t.model->init_weights(5);
    t.step = std::make_unique<TrainStep>(*t.model, AdamWConfig{}, StepLayout{});
    std::vector<int32_t> x(16), y(16);
    for (int s = 0; s < steps; ++s) {
      for (int i = 0; i < 16; ++i) {
        x[i] = static_cast<int32_t>(splitmix64(s * 100 + i) % kConfig.vocab_size);
        y[i] = static_cast<int32_t>(splitmix64(s * 100 + i + 50) % kConfig.vocab_size);
      }
      t.model->params().zero_grad(*be);
      t.model->forward(x.data(), y.data(), 2, 8);
      t.step->before_last_backward();
      t.model->backward(1.0f);
      t.step->step(1e-2f, clip_factor(t.step->reduce_gradients(), 1.0f));
    }
    return t;
  }
  const GPTConfig kConfig{2, 2, 8, 40, 8};
  std::unique_ptr<Backend> be = make_cpu_backend();
};

TEST_F(StateRoundTrip, StateOutIntoAFreshComponentAndOutAgainIsIdentical) {
  Trained trained = make(3);
  StateDict first;
  trained.step->state(first);
  EXPECT_EQ(first.value<int64_t>("optim/step"), 3);
  // Names: the model's parameters and both AdamW moments of each.
  std::set<std::string> names;
  for (const StateTensor& t : first.tensors) names.insert(t.name);
  const size_t n_params = trained.model->params().all().size();
  EXPECT_EQ(names.size(), 3 * n_params);
  EXPECT_TRUE(names.count("model/h.1.mlp.c_fc.weight") && names.count("optim/m/wte") &&
              names.count("optim/v/ln_f.bias"));
  for (const StateTensor& t : first.tensors)
    EXPECT_TRUE(t.writer) << t.name << ": one process writes everything";

  Trained fresh = make(0);
  fresh.step->load_state(first);
  StateDict second;
  fresh.step->state(second);
  EXPECT_EQ(second.value<int64_t>("optim/step"), 3);
  EXPECT_EQ(contents(*be, second), contents(*be, first));

  // And the restored component trains on exactly as the original: one more step each.
  auto one_more = [&](Trained& t) {
    std::vector<int32_t> x(16, 3), y(16, 7);
    t.model->params().zero_grad(*be);
    const float loss = t.model->forward(x.data(), y.data(), 2, 8);
    t.step->before_last_backward();
    t.model->backward(1.0f);
    t.step->step(1e-2f, clip_factor(t.step->reduce_gradients(), 1.0f));
    return loss;
  };
  EXPECT_EQ(one_more(trained), one_more(fresh));
  EXPECT_EQ(host(*be, trained.model->params().values()), host(*be, fresh.model->params().values()));
}

TEST_F(StateRoundTrip, LoadRefusesMissingOrMisshapenTensors) {
  Trained a = make(1), b = make(0);
  StateDict d;
  a.step->state(d);
  StateDict missing = d;
  missing.tensors.erase(missing.tensors.begin());
  try {
    b.step->load_state(missing);
    ADD_FAILURE() << "a state without model/wte was loaded";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("model/wte"), std::string::npos) << e.what();
  }
  StateDict no_step = d;
  no_step.values.clear();
  EXPECT_THROW(b.step->load_state(no_step), UserError);
}

}  // namespace
}  // namespace kervan
