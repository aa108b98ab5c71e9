// The memory plan a run is checked against before it allocates (launcher/memory_plan): its
// activation count is what GPT really allocates, and a plan that does not fit is refused.
#include <gtest/gtest.h>

#include "core/cpu/cpu_backend.h"
#include "core/matmul_workspace.h"
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
  EXPECT_NO_THROW(require_memory_fits(plan, 1, plan.host_total(), cfg.file));
  EXPECT_NO_THROW(require_memory_fits(plan, 1, -1, cfg.file));  // unknown: nothing to check against
  try {
    require_memory_fits(plan, 2, plan.host_total(), cfg.file);
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

// The CUDA backend keeps each attention row's log-sum-exp [B, NH, T] instead of the probabilities
// [B, NH, T, T] and needs no [B, NH, T, T] scratch for dP: its count differs from the CPU's by
// exactly those matrices, through the same shape functions the backends allocate with.
TEST(MemoryPlan, CudaActivationsKeepNoScoreMatrix) {
  GPTConfig c;
  c.n_layer = 3;
  c.n_head = 4;
  c.d_model = 32;
  c.vocab_size = 300;
  const int64_t B = 2, T = 48, NH = 4;
  const int64_t cpu = GPT::activation_bytes(c, 1, B, T, Device::CPU);
  const int64_t cuda = GPT::activation_bytes(c, 1, B, T, Device::CUDA);
  EXPECT_EQ(cpu - cuda, ((c.n_layer + 1) * B * NH * T * T - c.n_layer * B * NH * T) * 4);
}

RunConfig gpt2_medium_on_cuda(int64_t micro_batch) {
  RunConfig cfg;
  cfg.file = "gpu.toml";
  cfg.model.n_layer = 24;
  cfg.model.n_head = 16;
  cfg.model.d_model = 1024;
  cfg.model.vocab_size = 50257;
  cfg.model.max_seq_len = 1024;
  cfg.train.device = "cuda";
  cfg.train.micro_batch = micro_batch;
  cfg.train.seq_len = 1024;
  return cfg;
}

// On a GPU the model's tensors are device memory: the host keeps the runtime and CUDA's libraries.
TEST(MemoryPlan, CudaRunsPlanTheGpuApartFromTheHost) {
  const RunConfig cfg = gpt2_medium_on_cuda(16);
  const MemoryPlan gpu = *plan_memory(cfg, 1, 1);
  RunConfig on_cpu = cfg;
  on_cpu.train.device = "cpu";
  const MemoryPlan cpu = *plan_memory(on_cpu, 1, 1);
  EXPECT_EQ(gpu.weights, cpu.weights);
  EXPECT_EQ(gpu.optimizer, cpu.optimizer);
  EXPECT_EQ(cpu.device_total(), 0);
  EXPECT_EQ(gpu.device_total(), gpu.weights + gpu.gradients + gpu.optimizer + gpu.activations + gpu.rounding);
  EXPECT_EQ(gpu.host_total(), gpu.runtime + gpu.checkpoint);
  EXPECT_GT(gpu.runtime, cpu.runtime);  // CUDA's libraries
  // The bar: gpt2-medium, micro-batch 16, seq 1024 fits an 80 GB card (fp32 today); the
  // CPU's way of keeping attention would not.
  EXPECT_LT(gpu.device_total(), 80'000'000'000);
  EXPECT_GT(cpu.activations - gpu.activations, 24 * int64_t{16 * 16} * 1024 * 1024 * 4);
}

// bf16 products add the largest product's bf16 operands (the LM head's backward: the logits'
// gradient beside the embedding) and cuBLASLt's workspace, with one allocator granule each.
TEST(MemoryPlan, Bf16RunsCountTheMatmulWorkspace) {
  RunConfig cfg = gpt2_medium_on_cuda(16);
  const MemoryPlan fp32 = *plan_memory(cfg, 1, 1);
  cfg.train.precision = "bf16";
  const MemoryPlan bf16 = *plan_memory(cfg, 1, 1);
  EXPECT_EQ(fp32.matmul_workspace, 0);
  const int64_t BT = 16 * 1024, V = 50304, C = 1024;
  EXPECT_EQ(bf16.matmul_workspace, bf16_operand_layout(BT * V, V * C).bytes + kCublasLtWorkspaceBytes);
  EXPECT_EQ(bf16.device_total() - fp32.device_total(), bf16.matmul_workspace + 2 * (2 << 20));
  EXPECT_NE(bf16.describe().find("bf16 matmul workspace 1.78 GB"), std::string::npos) << bf16.describe();
  EXPECT_LT(bf16.device_total(), 80'000'000'000);
  // Under tensor parallelism each rank multiplies its vocabulary shard.
  EXPECT_EQ(plan_memory(cfg, 2, 1)->matmul_workspace,
            bf16_operand_layout(BT * V / 2, V / 2 * C).bytes + kCublasLtWorkspaceBytes);
}

TEST(MemoryPlan, ARunThatDoesNotFitTheGpuIsRefusedNamingTheSizes) {
  const RunConfig cfg = gpt2_medium_on_cuda(64);
  const MemoryPlan plan = *plan_memory(cfg, 1, 1);
  EXPECT_NO_THROW(require_device_memory_fits(plan, plan.device_total(), cfg.file));
  try {
    require_device_memory_fits(plan, plan.device_total() - 1, cfg.file);
    FAIL() << "a plan fit one byte less than it needs";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("gpu.toml: this run needs"), std::string::npos) << msg;
    EXPECT_NE(msg.find("of GPU memory per rank (on the GPU weights"), std::string::npos) << msg;
    EXPECT_NE(msg.find("train.micro_batch"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace kervan
