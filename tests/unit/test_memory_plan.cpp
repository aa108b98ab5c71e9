// The memory plan a run is checked against before it allocates (launcher/memory_plan): its
// activation count is what GPT really allocates, and a plan that does not fit is refused.
#include <gtest/gtest.h>

#include "core/cpu/cpu_backend.h"
#include "core/model/gpt.h"
#include "launcher/memory_plan.h"
#include "parallel/tensor_parallel.h"

namespace kervan {
namespace {

TEST(MemoryPlan, ActivationCountEqualsWhatGptAllocates) {
  auto be = make_cpu_backend();
  for (const auto& [n_layer, n_head, d_model, vocab, B, T] :
       std::vector<std::tuple<int, int, int, int, int, int>>{{1, 1, 8, 50, 1, 4}, {2, 4, 32, 300, 3, 16}}) {
    GPTConfig c;
    c.n_layer = n_layer;
    c.n_head = n_head;
    c.d_model = d_model;
    c.vocab_size = vocab;
    c.max_seq_len = T;
    GPT model(c, *be, B, T, nullptr);
    EXPECT_EQ(GPT::activation_bytes(c, 1, B, T), model.activation_bytes()) << n_layer << " layers, B " << B;
  }
}

TEST(MemoryPlan, ARunThatCannotFitIsRefusedNamingTheSizes) {
  RunConfig cfg;
  cfg.file = "run.toml";
  cfg.model.n_layer = 12;
  cfg.model.n_head = 12;
  cfg.model.d_model = 768;
  cfg.model.vocab_size = 50257;
  cfg.model.max_seq_len = 1024;
  cfg.train.micro_batch = 8;
  cfg.train.seq_len = 1024;
  const MemoryPlan plan = *plan_memory(cfg, 1, 1);
  EXPECT_EQ(plan.optimizer, 2 * plan.weights);
  EXPECT_NO_THROW(require_memory_fits(plan, 1, plan.total(), cfg.file));
  EXPECT_NO_THROW(require_memory_fits(plan, 1, -1, cfg.file));  // unknown: nothing to check against
  try {
    require_memory_fits(plan, 2, plan.total(), cfg.file);
    FAIL() << "two ranks of the plan fit where one does";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("run.toml: this run needs"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("x 2 ranks"), std::string::npos) << e.what();
  }
  // ZeRO-1 over 4 replicas keeps a quarter of the moments (rounded up to whole chunks).
  cfg.parallel.zero = 1;
  const MemoryPlan zero = *plan_memory(cfg, 1, 4);
  EXPECT_LE(zero.optimizer, plan.optimizer / 4 + 64);
  cfg.arch = "bert";
  EXPECT_FALSE(plan_memory(cfg, 1, 1).has_value());
}

}  // namespace
}  // namespace kervan
