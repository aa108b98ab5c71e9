#include "launcher/bench.h"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/backends/backends.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/gemm.h"
#include "core/cpu/host_threads.h"
#include "core/error.h"
#include "core/rng.h"
#include "datasets/loader/span_corruption.h"
#include "launcher/gemm_peak.h"
#include "launcher/job.h"
#include "launcher/model_setup.h"
#include "launcher/training_batches.h"
#include "parallel/tensor_parallel.h"
#include "parallel/train_step.h"

namespace kervan {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
}  // namespace

int run_bench_gemm(const std::vector<int64_t>& shape, bool trans_a, bool trans_b, int64_t threads, int reps) {
  set_host_threads(static_cast<int>(threads));
  auto be = make_cpu_backend();
  const GemmShape s{shape.at(0), shape.at(1), shape.at(2), trans_a, trans_b};
  const double flops = measure_gemm_flops(*be, s, reps);
  nlohmann::json j = {{"bench", "gemm"},
                      {"m", s.m},
                      {"n", s.n},
                      {"k", s.k},
                      {"trans_a", trans_a},
                      {"trans_b", trans_b},
                      {"threads", threads},
                      {"gflops", flops / 1e9},
                      {"kernel", sgemm_kernel_name()}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

namespace {

// The model a benchmark trains, as a run config: --arch, --preset or the shape options, --seq.
RunConfig bench_config(const BenchTrainOptions& o) {
  RunConfig c;
  c.file = "bench train";
  c.arch = o.arch;
  if (!o.preset.empty()) {
    c.preset = o.preset;
    c.model = preset_shape(o.arch, o.preset);
  } else {
    c.model.n_layer = static_cast<int>(o.layers);
    c.model.n_head = is_recurrent_arch(o.arch) ? 1 : static_cast<int>(o.heads);
    c.model.d_model = o.d_model;
    c.model.vocab_size = o.vocab;
  }
  c.t5_ffn = o.t5_ffn;
  c.model.max_seq_len = std::max(c.model.max_seq_len, o.seq);
  c.train.seq_len = o.seq;
  // The checks `kervan train` makes of the same shape, naming the flags.
  check_model_shape(
      c, [](const std::string&) { return std::string("bench train"); },
      [](const std::string& key) { return key == "train.seq_len" ? std::string("--seq") : key; });
  return c;
}

// Random examples of the family's shape: GPT's next tokens; BERT with each position predicted with
// probability 0.15 (as the PyTorch peer draws them); T5 with the span-corruption decoder length.
void random_batch(const RunConfig& c, int64_t B, int64_t T_dec, uint64_t key, ExampleBatch& ex) {
  const int64_t T = c.train.seq_len, V = c.model.vocab_size;
  int64_t i = 0;
  auto draw = [&](int64_t n) { return static_cast<int32_t>(splitmix64(key ^ splitmix64(i++)) % n); };
  ex = ExampleBatch{};
  ex.B = B;
  ex.T = T;
  for (int64_t n = 0; n < B * T; ++n) ex.tokens.push_back(draw(V));
  if (c.arch == "t5") {
    ex.T_dec = T_dec;
    for (int64_t n = 0; n < B * T_dec; ++n) {
      ex.decoder_tokens.push_back(draw(V));
      ex.targets.push_back(draw(V));
    }
    return;
  }
  for (int64_t n = 0; n < B * T; ++n)
    ex.targets.push_back(c.arch == "bert" && draw(100) >= 15 ? -1 : draw(V));
}

}  // namespace

int run_bench_train(const BenchTrainOptions& o) {
  if (o.batch <= 0 || o.seq <= 0 || o.steps <= 0 || o.threads <= 0)
    throw UserError("bench train: --batch, --seq, --steps and --threads must be positive");
  const RunConfig cfg = bench_config(o);
  const int64_t T_dec = o.arch == "t5" ? SpanCorruption::lengths(o.seq, 0.15, 3.0).targets : 0;

  // The job's groups and this rank's device as `kervan train` makes them (launcher/job.h): under
  // CUDA the dp and tp groups are NCCL on this rank's GPU.
  RunConfig job_cfg = cfg;
  job_cfg.parallel.tp = o.tp;
  Job job = start_job(job_cfg);
  const int ranks = job.grid.world_size, rank = job.grid.world_rank;
  const ProcessGrid& grid = job.grid;
  set_host_threads(static_cast<int>(o.threads));
  const std::unique_ptr<Backend> device_be = use_compute_device(o.device, job, cfg.parallel.collective_timeout_s, o.deterministic);
  Backend* be = device_be ? device_be.get() : job.host.get();
  be->set_precision(precision_named(o.precision));
  be->set_deterministic(o.deterministic);
  // What the CUDA context and libraries hold, measured now that the backend exists and before any
  // tensor (launcher/memory_plan.cpp's estimate waits for this reading).
  int64_t context_bytes = 0;
  if (be->device() == Device::CUDA) {
    const DeviceMemory m = gpu_memory();
    context_bytes = m.total - m.free - device_peak_bytes(*be);
  }
  std::unique_ptr<CommunicatorTpGroup> tp_group;
  if (grid.tp > 1) tp_group = std::make_unique<CommunicatorTpGroup>(*job.tp);

  // The GEMM rate this run's MFU is measured against: 1024^3 on the CPU, a size that fills a GPU there.
  const double peak = measure_gemm_flops(*be, o.device == "cpu" ? 1024 : 8192, 5) * ranks;
  std::unique_ptr<Model> model_ptr = make_model(cfg, *be, o.batch, tp_group.get(), T_dec);
  Model& model = *model_ptr;
  model.init_weights(1337);
  TrainStep train_step(model, AdamWConfig{}, {job.dp.get(), job.tp.get(), o.zero1});

  const int64_t n = o.batch * o.seq;
  ExampleBatch ex;
  double fwd = 0, bwd = 0, upd = 0, total = 0, comm = 0, exposed = 0, predicted = 0;
  for (int64_t step = 0; step < o.warmup_steps + o.steps; ++step) {
    // TP peers share a batch; DP replicas draw their own.
    random_batch(cfg, o.batch, T_dec, stream_key(1337 + grid.dp_rank, "bench.tokens." + std::to_string(step)),
                 ex);
    const auto t0 = Clock::now();
    model.params().zero_grad(*be);
    model.forward(batch_view(ex));
    be->synchronize();  // a device backend queues its work: wait before reading the clock
    const double t_fwd = since(t0);
    train_step.before_last_backward();
    model.backward(1.0f);
    // Counted in backward: the all-reduce the overlap did not hide (or ZeRO-1's reduce-scatter).
    const float norm = train_step.reduce_gradients();
    be->synchronize();
    const double t_bwd = since(t0) - t_fwd;
    train_step.step(1e-4f, clip_factor(norm, 1.0f));
    be->synchronize();
    const double t_all = since(t0);
    if (step >= o.warmup_steps) {
      fwd += t_fwd;
      bwd += t_bwd;
      upd += t_all - t_fwd - t_bwd;
      total += t_all;
      comm += train_step.comm_seconds();
      exposed += train_step.exposed_comm_seconds();
      predicted += static_cast<double>(model.predicted_positions());
    }
  }
  if (rank != 0) return 0;
  const double tps = static_cast<double>(n) * grid.dp * o.steps / total;
  const double flops = flops_per_token(cfg, predicted / (static_cast<double>(n) * o.steps),
                                       static_cast<double>(T_dec) / o.seq);
  nlohmann::json j = {{"impl", "kervan"},
                      {"family", o.arch},
                      {"preset", o.preset},
                      {"tokens_per_s", tps},
                      {"ms_per_step", 1e3 * total / o.steps},
                      {"mfu", flops * tps / peak},
                      {"flops_per_token", flops},
                      {"params", model_params(cfg)},
                      {"peak_rss_mb", peak_rss_mb()},
                      {"gemm_gflops", peak / 1e9},
                      {"threads", o.threads},
                      {"device", o.device},
                      {"precision", o.precision},
                      {"deterministic", o.deterministic},
                      {"peak_device_mb", static_cast<double>(device_peak_bytes(*be)) / 1e6},
                      {"context_mb", static_cast<double>(context_bytes) / 1e6},
                      {"ranks", ranks},
                      {"tp", grid.tp},
                      {"zero", o.zero1 ? 1 : 0},
                      {"batch", o.batch},
                      {"seq", o.seq}};
  if (T_dec > 0) j["decoder_seq"] = T_dec;
  if (o.profile)
    j["ms_per_phase"] = {{"forward", 1e3 * fwd / o.steps},
                         {"backward", 1e3 * bwd / o.steps},
                         {"clip_and_adamw", 1e3 * upd / o.steps}};
  if (train_step.num_buckets() > 0) {
    j["comm_ms"] = 1e3 * comm / o.steps;
    j["exposed_comm_ms"] = 1e3 * exposed / o.steps;
    j["hidden_comm_fraction"] = comm > 0 ? 1.0 - exposed / comm : 1.0;
  }
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace kervan
