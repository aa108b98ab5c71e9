#include "launcher/train.h"

#include <fmt/format.h>
#include <omp.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "core/error.h"
#include "core/model/generate.h"
#include "core/model/gpt.h"
#include "core/rng.h"
#include "launcher/coordinated_data.h"
#include "launcher/gemm_peak.h"
#include "launcher/text_codec.h"
#include "launcher/training_data.h"
#include "parallel/mpi_runtime.h"
#include "parallel/process_grid.h"
#include "parallel/shared_outcome.h"
#include "parallel/tensor_parallel.h"
#include "parallel/train_step.h"

namespace kervan {

namespace {

// The processes of one job: MPI when started by mpirun/srun, otherwise this process alone.
struct Job {
  std::unique_ptr<MpiRuntime> mpi;
  ProcessGrid grid;
  std::unique_ptr<Communicator> world, dp, tp;
  std::unique_ptr<Communicator> node;  // the ranks on this rank's machine
  bool leader() const { return grid.world_rank == 0; }
};

// The node group's only collectives wait for its first rank to verify the corpus, which for a
// large one takes far longer than a training collective may.
constexpr double kVerifyTimeoutS = 6 * 3600;

Job start_job(const RunConfig& cfg) {
  Job job;
  if (launched_by_mpi()) job.mpi = std::make_unique<MpiRuntime>();
  const int rank = job.mpi ? job.mpi->world_rank() : 0, size = job.mpi ? job.mpi->world_size() : 1;
  try {
    job.grid = ProcessGrid::make(rank, size, static_cast<int>(cfg.parallel.tp));
  } catch (const UserError& e) {
    throw UserError(cfg.file + ": " + e.what());
  }
  const double timeout = cfg.parallel.collective_timeout_s;
  if (job.mpi) {
    job.world = job.mpi->group(0, "world", timeout);
    job.dp = job.mpi->group(job.grid.tp_rank, "data-parallel", timeout);
    job.tp = job.mpi->group(job.grid.dp_rank, "tensor-parallel", timeout);
    job.node = job.mpi->node_group(kVerifyTimeoutS);
  } else {
    job.world = std::make_unique<SoloCommunicator>();
    job.dp = std::make_unique<SoloCommunicator>();
    job.tp = std::make_unique<SoloCommunicator>();
    job.node = std::make_unique<SoloCommunicator>();
  }
  return job;
}

// Every rank must train the same thing: compare a hash of the resolved config across ranks.
void check_same_config(const RunConfig& cfg, Job& job, Backend& be) {
  const uint64_t h = stream_key(0, cfg.canonical());
  Tensor mine = be.empty({2}, DType::I32), all = be.empty({2 * job.world->size()}, DType::I32);
  const int32_t parts[2] = {static_cast<int32_t>(h), static_cast<int32_t>(h >> 32)};
  be.copy_from_host(mine, parts);
  job.world->all_gather(all, mine);
  const std::vector<int32_t> p = be.to_host<int32_t>(all);
  for (int r = 1; r < job.world->size(); ++r)
    if (p[2 * r] != p[0] || p[2 * r + 1] != p[1])
      throw UserError(cfg.file + ": the resolved config of rank " + std::to_string(r) +
                      " differs from rank 0's (every rank must get the same file, --set flags and data)");
}

float mean_over(Communicator& group, Backend& be, double value) {
  Tensor t = be.empty({1}, DType::F32);
  const float v = static_cast<float>(value);
  be.copy_from_host(t, &v);
  group.all_reduce(t, ReduceOp::Avg);
  return be.item<float>(t);
}

// Mean loss over the validation batches: each DP rank evaluates its own share of every global
// batch (TP peers the same one), and the mean is taken over the DP group.
float evaluate(Model& model, DataLoader& val, const RunConfig& cfg, const Job& job, Communicator& dp,
               Backend& be) {
  const int64_t B = cfg.train.micro_batch, T = cfg.train.seq_len;
  const int64_t per_batch = B * job.grid.dp;
  const int64_t batches =
      std::min(cfg.train.eval_batches, std::max<int64_t>(1, val.num_windows(0) / per_batch));
  std::vector<int32_t> inputs(B * T), targets(B * T);
  double sum = 0;
  for (int64_t i = 0; i < batches; ++i) {
    // Unshuffled, so sample k is window k mod W: every evaluation sees the same windows.
    val.fill_batch(first_sample_of(i * per_batch, 0, job.grid.dp, job.grid.dp_rank, B), B, inputs.data(),
                   targets.data());
    sum += model.forward(inputs.data(), targets.data(), B, T);
  }
  return mean_over(dp, be, sum / static_cast<double>(batches));
}

}  // namespace

int run_train(const RunConfig& cfg) {
  const auto& t = cfg.train;
  Job job = start_job(cfg);
  if (!job.leader()) spdlog::set_level(spdlog::level::warn);
  set_host_threads(t.threads > 0 ? static_cast<int>(t.threads) : omp_get_num_procs());
  auto be = make_cpu_backend();
  check_same_config(cfg, job, *be);

  // Through a coordinator (which verified every shard), or from the folders: every shard is read
  // and checksummed once per node, the node's first rank in full, the others trusting its verdict
  // (the same files) and checking only headers and sizes.
  std::unique_ptr<CoordinatedData> coordinated;
  if (!cfg.data.coordinator.empty() || !cfg.parallel.coordinator.empty())
    coordinated = std::make_unique<CoordinatedData>(cfg, job.grid, job.node->size() == job.world->size(),
                                                    *job.world, *be);
  std::optional<TrainingData> verified;
  if (coordinated)
    verified = open_training_data(cfg, coordinated->paths(), coordinated->opener());
  else
    run_on_root_and_share_outcome(*job.node, *be, [&] { verified = open_training_data(cfg, Verify::Full); });
  TrainingData data = verified ? std::move(*verified) : open_training_data(cfg, Verify::HeaderOnly);
  const TextCodec codec(cfg.sample.tokens > 0 ? data.tokenizer : "none");
  // The sample prompt is checked now, on every rank, rather than after training.
  std::vector<int32_t> prompt = codec.encode(cfg.sample.prompt);
  if (prompt.empty()) prompt.push_back(0);  // "none" cannot encode text: start from token 0
  for (const int32_t id : prompt)
    if (id >= cfg.model.vocab_size)
      throw UserError(cfg.file + ": sample.prompt encodes to token " + std::to_string(id) +
                      ", outside model.vocab_size (" + std::to_string(cfg.model.vocab_size) + ")");

  std::ofstream metrics;
  if (job.leader() && !cfg.log.metrics_file.empty()) {
    const auto dir = std::filesystem::path(cfg.log.metrics_file).parent_path();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    metrics.open(cfg.log.metrics_file, std::ios::trunc);
    if (!metrics)
      throw UserError(cfg.file + ": log.metrics_file: cannot write '" + cfg.log.metrics_file + "'");
  }

  CommunicatorTpGroup tp_group(*job.tp);
  std::unique_ptr<Model> model_ptr;
  try {
    model_ptr = std::make_unique<GPT>(cfg.model, *be, t.micro_batch, t.seq_len,
                                      job.grid.tp > 1 ? &tp_group : nullptr);
  } catch (const UserError& e) {
    throw UserError(cfg.file + ": " + e.what());
  }
  Model& model = *model_ptr;
  // Same global values on every rank and in every (DP, TP) layout (counter-based, global indices).
  model.init_weights(static_cast<uint64_t>(t.seed));
  TrainStep train_step(model, {t.beta1, t.beta2, t.eps, t.weight_decay},
                       {job.dp.get(), job.tp.get(), cfg.parallel.zero == 1,
                        static_cast<int64_t>(cfg.parallel.bucket_mb * 1e6)});
  const LrSchedule schedule = cfg.schedule();
  const double peak_flops = measure_gemm_flops(*be, 1024, 3) * job.grid.world_size;
  const int64_t params = model.num_params();
  const int64_t dp = job.grid.dp, B = t.micro_batch;
  const int64_t samples_per_step = B * dp * t.grad_accum;
  const int64_t tokens_per_step = samples_per_step * t.seq_len;
  spdlog::info("model: {} layers, {} heads, d_model {}, vocab {} (padded {}), {:.2f}M parameters",
               cfg.model.n_layer, cfg.model.n_head, cfg.model.d_model, cfg.model.vocab_size,
               cfg.model.padded_vocab(), params / 1e6);
  spdlog::info("data: {}", data.describe());
  spdlog::info("{}; {} tokens per step; {} threads per rank; GEMM peak {:.1f} GFLOP/s in all",
               job.grid.describe(), tokens_per_step, be->num_threads(), peak_flops / 1e9);
  if (train_step.num_buckets() > 0)
    spdlog::info("data parallel: {} gradient buckets of ~{} MB", train_step.num_buckets(),
                 cfg.parallel.bucket_mb);
  if (dp > 1 && cfg.parallel.zero == 1)
    spdlog::info("ZeRO-1: {} optimizer-state elements on this rank", train_step.optimizer_state_numel());

  std::vector<int32_t> inputs(B * t.seq_len), targets(inputs.size());
  int64_t consumed_samples = 0;
  for (int64_t step = 0; step < t.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    model.params().zero_grad(*be);
    double loss = 0.0;
    for (int64_t micro = 0; micro < t.grad_accum; ++micro) {
      data.train->fill_batch(first_sample_of(consumed_samples, micro, dp, job.grid.dp_rank, B), B,
                             inputs.data(), targets.data());
      loss += model.forward(inputs.data(), targets.data(), B, t.seq_len) / t.grad_accum;
      if (micro == t.grad_accum - 1) train_step.before_last_backward();
      model.backward(1.0f / static_cast<float>(t.grad_accum));
    }
    const float norm = train_step.reduce_gradients();
    consumed_samples += samples_per_step;
    const float lr = schedule.at(step);
    train_step.step(lr, clip_factor(norm, t.grad_clip));
    if (dp > 1) loss = mean_over(*job.dp, *be, loss);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      spdlog::error("step {}: loss {} / grad norm {} is not finite; stopping", step, loss, norm);
      return kExitNumerical;
    }
    const double tps = tokens_per_step / secs;
    const double mfu = 6.0 * params * tps / peak_flops;
    // Validation: each source's val split, and their mean weighted like the training blend.
    std::optional<float> val_loss;
    std::vector<float> val_losses;
    if (!data.val.empty() && ((step + 1) % t.eval_every == 0 || step == t.steps - 1)) {
      double mean = 0;
      for (const ValidationSet& v : data.val) {
        val_losses.push_back(evaluate(model, *v.loader, cfg, job, *job.dp, *be));
        mean += v.weight * val_losses.back();
      }
      val_loss = static_cast<float>(mean);
    }
    if (metrics.is_open()) {
      nlohmann::json j = {{"step", step},
                          {"loss", static_cast<float>(loss)},
                          {"lr", lr},
                          {"grad_norm", norm},
                          {"tokens_per_s", tps},
                          {"mfu", mfu},
                          {"ms_per_step", secs * 1e3},
                          {"consumed_samples", consumed_samples}};
      if (train_step.num_buckets() > 0) {
        j["comm_ms"] = train_step.comm_seconds() * 1e3;
        j["exposed_comm_ms"] = train_step.exposed_comm_seconds() * 1e3;
      }
      if (val_loss) j["val_loss"] = *val_loss;
      if (val_losses.size() > 1)
        for (size_t v = 0; v < val_losses.size(); ++v) j["val_losses"][data.val[v].path] = val_losses[v];
      metrics << j.dump() << '\n' << std::flush;
      if (!metrics)
        throw EnvironmentError("write", "log.metrics_file '" + cfg.log.metrics_file + "'",
                               std::strerror(errno));
    }
    if (step % cfg.log.every == 0 || step == t.steps - 1)
      spdlog::info("step {:>5}/{} | loss {:.4f} | lr {:.2e} | grad norm {:.3f} | {:.0f} tok/s | MFU {:.1f}%",
                   step, t.steps, loss, lr, norm, tps, 100 * mfu);
    if (val_loss) {
      std::string per_source;
      for (size_t v = 0; val_losses.size() > 1 && v < val_losses.size(); ++v)
        per_source += fmt::format("{}{}: {:.4f}", v ? ", " : " (", data.val[v].path, val_losses[v]);
      spdlog::info("step {:>5}/{} | validation loss {:.4f}{}", step, t.steps, *val_loss,
                   per_source.empty() ? "" : per_source + ")");
    }
    if (coordinated) {
      coordinated->session().progress(step, consumed_samples, tps);
      // Every rank stops at the same step, or the others would wait in a collective.
      if (mean_over(*job.world, *be, coordinated->session().stop_requested() ? 1.0 : 0.0) > 0) {
        spdlog::warn("step {}: the coordinator asks the job to stop ({}); stopping", step,
                     coordinated->session().stop_requested() ? coordinated->session().stop_reason()
                                                             : "another rank heard it");
        break;
      }
    }
  }

  // Sampling runs on the first data-parallel replica; all its tensor-parallel ranks take part
  // (the logits are gathered over the vocabulary shards); the leader prints.
  if (cfg.sample.tokens > 0 && job.grid.dp_rank == 0) {
    SampleOptions so{cfg.sample.tokens, cfg.sample.temperature, cfg.sample.top_k,
                     static_cast<uint64_t>(t.seed)};
    const auto out = generate(model, prompt, t.seq_len, so);
    if (job.leader())
      std::printf("----- sample (%lld tokens, tokenizer %s) -----\n%s\n-----\n",
                  static_cast<long long>(cfg.sample.tokens), codec.name().c_str(), codec.decode(out).c_str());
  }
  job.world->barrier();
  return 0;
}

}  // namespace kervan
