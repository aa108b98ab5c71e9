#include "launcher/train.h"

#include <fmt/format.h>
#include <omp.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "checkpoint/failpoint.h"
#include "core/backends/backends.h"
#include "core/cpu/gemm.h"
#include "core/cpu/host_threads.h"
#include "core/error.h"
#include "core/model/generate.h"
#include "core/rng.h"
#include "launcher/coordinated_data.h"
#include "launcher/dry_run.h"
#include "launcher/gemm_peak.h"
#include "launcher/job.h"
#include "launcher/memory_plan.h"
#include "launcher/metrics_file.h"
#include "launcher/model_setup.h"
#include "launcher/progress.h"
#include "launcher/run_checkpoints.h"
#include "launcher/text_codec.h"
#include "launcher/train_progress.h"
#include "launcher/training_data.h"
#include "parallel/shared_outcome.h"
#include "parallel/train_step.h"

namespace kervan {

namespace {

// Mean loss over the validation batches: each DP rank evaluates its own share of every global
// batch (TP peers the same one), and the mean is taken over the DP group.
float evaluate(Model& model, TrainingBatches& val, const RunConfig& cfg, const Job& job, Communicator& dp,
               Backend& be) {
  const int64_t B = cfg.train.micro_batch;
  const int64_t per_batch = B * job.grid.dp;
  const int64_t batches =
      std::min(cfg.train.eval_batches, std::max<int64_t>(1, val.loader().num_windows(0) / per_batch));
  ExampleBatch ex;
  double sum = 0;
  for (int64_t i = 0; i < batches; ++i) {
    // Unshuffled, so sample k is window k mod W: every evaluation sees the same examples.
    val.fill(first_sample_of(i * per_batch, 0, job.grid.dp, job.grid.dp_rank, B), B, ex);
    sum += model.forward(batch_view(ex));
  }
  return mean_over(dp, be, sum / static_cast<double>(batches));
}

std::string describe_model(const RunConfig& cfg) {
  if (is_recurrent_arch(cfg.arch)) {
    const RecurrentConfig r = recurrent_config(cfg);
    return fmt::format(
        "{}{}: {} layers of {} units{}, {} output layer, vocab {} (padded {}){}, {:.2f}M parameters",
        cfg.arch, cfg.preset.empty() ? "" : " (" + cfg.preset + ")", r.n_layer, r.d_model,
        r.residual ? " (residual)" : "", r.tied ? "tied" : "untied", r.vocab_size, r.padded_vocab(),
        r.carry_state ? ", hidden state carried across windows" : "", r.num_params() / 1e6);
  }
  std::string extra = cfg.arch == "t5" ? fmt::format(", {} feed-forward", cfg.t5_ffn) : "";
  return fmt::format("{}{}: {} layers{}, {} heads, d_model {}, vocab {} (padded {}){}, {:.2f}M parameters",
                     cfg.arch, cfg.preset.empty() ? "" : " (" + cfg.preset + ")", cfg.model.n_layer,
                     cfg.arch == "t5" ? " per stack" : "", cfg.model.n_head, cfg.model.d_model,
                     cfg.model.vocab_size, cfg.model.padded_vocab(), extra, model_params(cfg) / 1e6);
}

// Not a signal: the coordinator asked the job to stop (`kervan status --stop`, a dead worker).
constexpr int kStopByCoordinator = 1000;

// The stop signal any rank has received (0: none; kStopByCoordinator when a rank heard the
// coordinator ask for a stop and no rank a signal), the same on every rank: they all stop at the
// same step boundary.
int agreed_stop_signal(const StopSignals& signals, CoordinatedData* coordinated, Communicator& world,
                       Backend& host) {
  int received = signals.received();
  if (received == 0 && coordinated && coordinated->session().stop_requested()) received = kStopByCoordinator;
  if (world.size() == 1) return received;
  Tensor t = host.empty({1}, DType::F32);
  const float mine = static_cast<float>(received);
  host.copy_from_host(t, &mine);
  world.all_reduce(t, ReduceOp::Max);
  return static_cast<int>(host.item<float>(t));
}

// The test hook of the health checks: KERVAN_TEST_POISON_GRAD lists steps ("5" or "5,6,7" or
// "5-9") whose gradient becomes NaN (the backward's loss scale is NaN on every rank), as a
// numerical blow-up would make it.
std::vector<int64_t> poisoned_steps() {
  std::vector<int64_t> out;
  const char* v = std::getenv("KERVAN_TEST_POISON_GRAD");
  if (!v) return out;
  std::string s(v);
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t comma = std::min(s.find(',', pos), s.size());
    const std::string item = s.substr(pos, comma - pos);
    const size_t dash = item.find('-');
    const int64_t a = std::stoll(item.substr(0, dash));
    const int64_t b = dash == std::string::npos ? a : std::stoll(item.substr(dash + 1));
    for (int64_t i = a; i <= b; ++i) out.push_back(i);
    pos = comma + 1;
  }
  return out;
}

// A training sample from the first data-parallel replica (every TP rank of it takes part); the
// leader prints it. Returns whether this rank took part.
void print_sample(Model& model, const Job& job, const RunConfig& cfg, const TextCodec& codec,
                  const std::vector<int32_t>& prompt, const std::string& title) {
  if (job.grid.dp_rank != 0) return;
  SampleOptions so{cfg.sample.tokens, cfg.sample.temperature, cfg.sample.top_k,
                   static_cast<uint64_t>(cfg.train.seed)};
  so.top_p = cfg.sample.top_p;
  const auto out = generate(model, prompt, cfg.train.seq_len, so);
  if (job.leader())
    std::printf("----- %s (%lld tokens, tokenizer %s) -----\n%s\n-----\n", title.c_str(),
                static_cast<long long>(cfg.sample.tokens), codec.name().c_str(), codec.decode(out).c_str());
  std::fflush(stdout);
}

// Rank 0 journals each checkpoint's data position with the coordinator once the checkpoint is
// committed (so `kervan status` shows what a restart resumes from).
void commit_data_positions(RunCheckpoints& checkpoints, CoordinatedData& coordinated) {
  if (const std::optional<CommittedCheckpoint> c = checkpoints.take_committed())
    coordinated.session().commit_position(c->step, c->consumed_samples, c->folder);
}

}  // namespace

LossSpikes::LossSpikes(size_t window) : window_(window) {}

std::optional<double> LossSpikes::add(double loss) {
  std::optional<double> z;
  if (losses_.size() >= kMinHistory) {
    double mean = 0, var = 0;
    for (double l : losses_) mean += l;
    mean /= static_cast<double>(losses_.size());
    for (double l : losses_) var += (l - mean) * (l - mean);
    const double sd = std::sqrt(var / static_cast<double>(losses_.size()));
    if (sd > 0) z = (loss - mean) / sd;
  }
  losses_.push_back(loss);
  if (losses_.size() > window_) losses_.pop_front();
  return z;
}

TrainedModel train_on_job(const RunConfig& cfg, Job& job, Backend& be, TrainingData& data,
                          const StopSignals& signals, CoordinatedData* coordinated,
                          const TrainingSampler* sampler) {
  const auto& t = cfg.train;
  // The checkpoint folder is checked (locked, writable on every rank) before anything is built.
  const WriterLayout layout{
      job.grid.world_size, job.grid.dp,      job.grid.tp,     cfg.parallel.zero == 1 && job.grid.dp > 1,
      job.grid.world_rank, job.grid.dp_rank, job.grid.tp_rank};
  RunCheckpoints checkpoints(cfg, layout, *job.world, *job.host, be);

  // What this rank will allocate, checked against what the node has before anything is allocated.
  if (const std::optional<MemoryPlan> memory = plan_memory(cfg, job.grid.tp, job.grid.dp)) {
    spdlog::info("memory per rank: {}", memory->describe());
    require_memory_fits(*memory, job.node->size(), available_memory_bytes(), cfg.file);
    if (memory->device == Device::CUDA) require_device_memory_fits(*memory, gpu_memory().free, cfg.file);
  }

  TrainedModel out;
  out.tp_group = std::make_unique<CommunicatorTpGroup>(*job.tp);
  out.model = make_model(cfg, be, t.micro_batch, job.grid.tp > 1 ? out.tp_group.get() : nullptr,
                         data.train->decoder_seq());
  Model& model = *out.model;
  model.set_replica(job.grid.dp_rank, job.grid.dp);
  const bool carry = is_recurrent_arch(cfg.arch) && cfg.recurrent.carry_state;
  if (carry) data.train->carry_lanes(t.micro_batch * job.grid.dp, cfg.file);
  // Same global values on every rank and in every (DP, TP) layout (counter-based, global indices).
  model.init_weights(static_cast<uint64_t>(t.seed));
  TrainStep train_step(model, {t.beta1, t.beta2, t.eps, t.weight_decay},
                       {job.dp.get(), job.tp.get(), cfg.parallel.zero == 1,
                        static_cast<int64_t>(cfg.parallel.bucket_mb * 1e6)});
  const LrSchedule schedule = cfg.schedule();
  const double peak_flops = measure_gemm_flops(be, 1024, 3) * job.grid.world_size;
  const int64_t dp = job.grid.dp, B = t.micro_batch;
  const int64_t samples_per_step = B * dp * t.grad_accum;
  const int64_t tokens_per_step = samples_per_step * t.seq_len;
  spdlog::info("model: {}", describe_model(cfg));
  if (carry)
    spdlog::info("carried state: {} rows each read consecutive windows of their own stretch of the corpus",
                 t.micro_batch * job.grid.dp);
  if (cfg.arch == "bert" || cfg.arch == "t5")
    spdlog::info("objective: {}; special tokens after the tokenizer's {} ids",
                 cfg.arch == "bert"
                     ? (cfg.data.whole_word_masking ? "masked LM, whole words" : "masked LM")
                     : fmt::format("span corruption, decoder length {}", data.train->decoder_seq()),
                 data.specials.base_vocab);
  spdlog::info("data: {}", data.describe());
  spdlog::info("{}; {} tokens per step; {} threads per rank; GEMM peak {:.1f} GFLOP/s in all{}",
               job.grid.describe(), tokens_per_step, be.num_threads(), peak_flops / 1e9,
               be.device() == Device::CPU ? fmt::format(" ({} kernel)", sgemm_kernel_name()) : "");
  if (train_step.num_buckets() > 0)
    spdlog::info("data parallel: {} gradient buckets of ~{} MB", train_step.num_buckets(),
                 cfg.parallel.bucket_mb);
  if (dp > 1 && cfg.parallel.zero == 1)
    spdlog::info("ZeRO-1: {} optimizer-state elements on this rank", train_step.optimizer_state_numel());

  std::vector<std::string> sources;
  std::vector<double> weights;
  const DataLoader& loader = data.train->loader();
  for (int d = 0; d < loader.num_sources(); ++d) {
    // Through a coordinator the data.path entries name the sources (an embedded coordinator's are
    // the folders themselves), not the address they came from this time.
    sources.push_back(coordinated ? coordinated->paths()[d] : loader.source(d).path());
    weights.push_back(loader.weight(d));
  }
  TrainProgress progress(cfg, sources, weights);
  if (coordinated) progress.served_corpora = coordinated->served_corpora();
  const bool resumed = checkpoints.start(model, train_step, progress);
  if (coordinated && job.leader())
    coordinated->align_committed(checkpoints.resumed_from(), progress.step, progress.consumed_samples);
  if (resumed && progress.step >= t.steps)
    spdlog::info("the checkpoint is at step {}, train.steps = {}: nothing left to train", progress.step,
                 t.steps);
  MetricsFile metrics;
  if (job.leader() && !cfg.log.metrics_file.empty()) {
    std::vector<std::string> inputs = cfg.data.paths;
    inputs.push_back(cfg.file);
    metrics = MetricsFile(cfg.log.metrics_file, inputs, progress.step);
  }

  // Training health: a step with a non-finite loss or gradient norm is skipped (no update; its
  // data is consumed) and counted; train.max_bad_steps of them in a row stop the run with a
  // checkpoint of the last good state. Loss spikes are scored against the recent losses.
  const std::vector<int64_t> poisoned = poisoned_steps();
  LossSpikes spikes;
  int64_t bad_total = 0, bad_in_a_row = 0;
  int64_t good_step = progress.step, good_consumed = progress.consumed_samples;
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t first_step = progress.step;
  TrainingBar bar(job.leader() && StatusLine::stderr_is_terminal(), first_step, t.steps);

  ExampleBatch ex;
  for (int64_t step = progress.step; step < t.steps; ++step) {
    failpoint("train_step", step);  // the crash tests: SIGKILL here (checkpoint/failpoint.h)
    const int64_t consumed_samples = progress.consumed_samples;
    const auto t0 = std::chrono::steady_clock::now();
    model.params().zero_grad(be);
    double loss = 0.0, predicted = 0.0;
    for (int64_t micro = 0; micro < t.grad_accum; ++micro) {
      const int64_t first = first_sample_of(consumed_samples, micro, dp, job.grid.dp_rank, B);
      data.train->fill(first, B, ex);
      Batch batch = batch_view(ex);
      batch.carry_state = carry;
      batch.reset_state = carry && data.train->stream_starts(first);
      loss += model.forward(batch) / t.grad_accum;
      predicted += static_cast<double>(model.predicted_positions());
      if (micro == t.grad_accum - 1) train_step.before_last_backward();
      const bool poison = micro == 0 && std::find(poisoned.begin(), poisoned.end(), step) != poisoned.end();
      model.backward(poison ? std::numeric_limits<float>::quiet_NaN()
                            : 1.0f / static_cast<float>(t.grad_accum));
    }
    const float norm = train_step.reduce_gradients();
    const float lr = schedule.at(step);
    // The same verdict on every rank: the norm is global, the loss averaged over DP (TP peers share it).
    if (dp > 1) loss = mean_over(*job.dp, be, loss);
    const bool bad = !std::isfinite(loss) || !std::isfinite(norm);
    if (!bad) train_step.step(lr, clip_factor(norm, t.grad_clip));
    predicted = sum_over(*job.dp, be, {predicted})[0];
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::optional<double> z;
    if (bad) {
      ++bad_total;
      ++bad_in_a_row;
      spdlog::warn(
          "step {}: {} is not finite (loss {}, grad norm {}): update skipped ({} in a row, {} in this run)",
          step, std::isfinite(loss) ? "the gradient norm" : "the loss", loss, norm, bad_in_a_row, bad_total);
    } else {
      bad_in_a_row = 0;
      z = spikes.add(loss);
      if (z && *z > LossSpikes::kWarnZ)
        spdlog::warn(
            "step {}: loss spike: {:.4f} is {:.1f} standard deviations above the mean of the last {} steps",
            step, loss, *z, spikes.size() - 1);
    }
    const double tps = tokens_per_step / secs;
    const double per_token = static_cast<double>(tokens_per_step);
    const double flops = flops_per_token(cfg, predicted / per_token,
                                         static_cast<double>(data.train->decoder_seq()) / t.seq_len);
    const double mfu = flops * tps / peak_flops;
    // Validation: each source's val split, and their mean weighted like the training blend.
    std::optional<float> val_loss;
    std::vector<float> val_losses;
    if (!data.val.empty() && ((step + 1) % t.eval_every == 0 || step == t.steps - 1)) {
      double mean = 0;
      for (const ValidationSet& v : data.val) {
        val_losses.push_back(evaluate(model, *v.batches, cfg, job, *job.dp, be));
        mean += v.weight * val_losses.back();
      }
      val_loss = static_cast<float>(mean);
    }
    if (metrics.is_open()) {
      nlohmann::json j = {{"step", step},
                          {"loss", static_cast<float>(loss)},
                          {"predicted", static_cast<int64_t>(predicted)},
                          {"lr", lr},
                          {"grad_norm", norm},
                          {"tokens_per_s", tps},
                          {"mfu", mfu},
                          {"ms_per_step", secs * 1e3},
                          {"consumed_samples", consumed_samples + samples_per_step},
                          {"tokens", (consumed_samples + samples_per_step) * t.seq_len},
                          {"bad_steps", bad_total},
                          {"skipped", bad}};
      if (z) j["loss_z"] = *z;
      if (train_step.num_buckets() > 0) {
        j["comm_ms"] = train_step.comm_seconds() * 1e3;
        j["exposed_comm_ms"] = train_step.exposed_comm_seconds() * 1e3;
      }
      if (val_loss) j["val_loss"] = *val_loss;
      if (val_losses.size() > 1)
        for (size_t v = 0; v < val_losses.size(); ++v) j["val_losses"][data.val[v].path] = val_losses[v];
      metrics.write_line(j.dump());
    }
    if (step % cfg.log.every == 0 || step == t.steps - 1) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      const double eta =
          elapsed / static_cast<double>(step + 1 - first_step) * static_cast<double>(t.steps - step - 1);
      spdlog::info(
          "step {:>5}/{} | loss {:.4f} | {} predicted | lr {:.2e} | grad norm {:.3f} | {:.0f} tok/s | MFU "
          "{:.1f}% | elapsed {} | ETA {}{}",
          step, t.steps, loss, static_cast<int64_t>(predicted), lr, norm, tps, 100 * mfu, clock_text(elapsed),
          clock_text(eta), bad_total ? fmt::format(" | {} bad steps", bad_total) : "");
    }
    if (val_loss) {
      std::string per_source;
      for (size_t v = 0; val_losses.size() > 1 && v < val_losses.size(); ++v)
        per_source += fmt::format("{}{}: {:.4f}", v ? ", " : " (", data.val[v].path, val_losses[v]);
      spdlog::info("step {:>5}/{} | validation loss {:.4f}{}", step, t.steps, *val_loss,
                   per_source.empty() ? "" : per_source + ")");
    }

    progress.step = step + 1;
    progress.consumed_samples += samples_per_step;
    bar.step_done(progress.step, static_cast<double>(tokens_per_step));
    if (!bad) good_step = progress.step, good_consumed = progress.consumed_samples;
    if (coordinated) coordinated->session().progress(progress.step, progress.consumed_samples, tps);
    checkpoints.check_failures();
    if (bad_in_a_row >= t.max_bad_steps) {
      // The weights and the optimizer have not changed since the last good step: saved with that
      // step's position, a resume starts right after it.
      progress.step = good_step;
      progress.consumed_samples = good_consumed;
      checkpoints.after_step(train_step, progress, /*now=*/true);
      const std::string saved = checkpoints.finish();
      spdlog::error(
          "stopping: {} steps in a row ({} to {}) had a non-finite loss or gradient norm "
          "(train.max_bad_steps = {}); "
          "{}; lower train.lr or raise train.warmup_steps before resuming",
          bad_in_a_row, step + 1 - bad_in_a_row, step, t.max_bad_steps,
          saved.empty()
              ? std::string("no checkpoint saved (no checkpoint.dir)")
              : fmt::format("the last good state (after step {}) is saved in {}", good_step - 1, saved));
      out.exit_code = kExitNumerical;
      return out;
    }
    const int stop = agreed_stop_signal(signals, coordinated, *job.world, *job.host);
    // No periodic save inside a run of bad steps: the last good state is saved if they go on.
    if (bad_in_a_row == 0 || stop != 0 || progress.step == t.steps)
      checkpoints.after_step(train_step, progress, /*now=*/stop != 0 || progress.step == t.steps);
    if (coordinated) commit_data_positions(checkpoints, *coordinated);
    if (sampler && cfg.sample.every > 0 && progress.step % cfg.sample.every == 0 && progress.step < t.steps) {
      bar.clear();  // the sample goes to stdout, on the same terminal
      (*sampler)(model, fmt::format("sample at step {}", progress.step));
    }
    if (const char* ms = std::getenv("KERVAN_TEST_STEP_DELAY_MS"))  // the Slurm test: time to signal
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(ms)));
    if (stop) {
      const std::string saved = checkpoints.finish();
      if (coordinated) commit_data_positions(checkpoints, *coordinated);
      if (job.leader())
        spdlog::info("stopped by {} after step {}: {}",
                     stop == kStopByCoordinator
                         ? "the coordinator (" + coordinated->session().stop_reason() + ")"
                         : std::string(signal_name(stop)),
                     progress.step,
                     saved.empty() ? std::string("nothing saved (no checkpoint.dir)")
                                   : "checkpoint saved to " + saved);
      out.stopped = true;
      return out;
    }
  }
  const std::string saved = checkpoints.finish();
  if (coordinated) commit_data_positions(checkpoints, *coordinated);
  if (!saved.empty()) spdlog::info("last checkpoint: {}", saved);
  return out;
}

std::string rank_log_path(const std::string& metrics_file, int rank) {
  std::filesystem::path p(metrics_file);
  p.replace_extension();
  return p.string() + ".rank" + std::to_string(rank) + ".log";
}

void log_to_rank_file(const RunConfig& cfg, int rank) {
  // Without a metrics file there is no run folder to write into: warnings and errors only.
  if (cfg.log.metrics_file.empty()) return spdlog::set_level(spdlog::level::warn);
  const std::string path = rank_log_path(cfg.log.metrics_file, rank);
  try {
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
    auto terminal = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    terminal->set_level(spdlog::level::err);  // errors still reach the shared terminal
    auto logger = std::make_shared<spdlog::logger>("kervan", spdlog::sinks_init_list{file, terminal});
    logger->set_pattern(fmt::format("[%Y-%m-%d %H:%M:%S] rank {} %l %v", rank));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
  } catch (const spdlog::spdlog_ex& e) {
    throw EnvironmentError("open", path, e.what());
  }
}

int run_train(const RunConfig& cfg) {
  const StopSignals signals;  // from now on a signal stops the run at a step boundary
  Job job = start_job(cfg);
  if (!job.leader()) log_to_rank_file(cfg, job.grid.world_rank);
  set_host_threads(cfg.train.threads > 0 ? static_cast<int>(cfg.train.threads) : omp_get_num_procs());
  // The model computes on train.device; control messages between ranks (config hashes, shared
  // verdicts, coordinator words) stay in host memory, on job.host (the rule in launcher/job.h).
  Backend& host = *job.host;
  const std::unique_ptr<Backend> device_be =
      use_compute_device(cfg.train.device, job, cfg.parallel.collective_timeout_s, cfg.train.deterministic);
  Backend& be = device_be ? *device_be : host;
  be.set_precision(precision_named(cfg.train.precision));
  be.set_deterministic(cfg.train.deterministic);
  check_same_config(cfg, job, host);
  // data.tokenizer is loaded now, sampling or not: a wrong one is a mistake found before the data
  // is verified and compute is spent, not a surprise in the first sample.
  if (!cfg.data.tokenizer.empty()) {
    try {
      (void)TextCodec(cfg.data.tokenizer);
    } catch (const UserError& e) {
      throw UserError(cfg.file + ": data.tokenizer '" + cfg.data.tokenizer + "': " + e.what());
    }
  }

  // Through a coordinator (which verified every shard), or from the folders: every shard is read
  // and checksummed once per node, the node's first rank in full, the others trusting its verdict
  // (the same files) and checking only headers and sizes.
  std::unique_ptr<CoordinatedData> coordinated;
  if (!cfg.data.coordinator.empty() || !cfg.parallel.coordinator.empty())
    coordinated = std::make_unique<CoordinatedData>(cfg, job.grid, job.node->size() == job.world->size(),
                                                    *job.world, host);
  std::optional<TrainingData> verified;
  if (coordinated)
    verified = open_training_data(cfg, coordinated->paths(), coordinated->opener());
  else
    run_on_root_and_share_outcome(*job.node, host,
                                  [&] { verified = open_training_data(cfg, Verify::Full); });
  TrainingData data = verified ? std::move(*verified) : open_training_data(cfg, Verify::HeaderOnly);
  // The sample prompt is checked now, on every rank, rather than after training.
  const TextCodec codec(cfg.sample.tokens > 0 ? data.tokenizer : "none");
  std::vector<int32_t> prompt = codec.encode(cfg.sample.prompt);
  if (prompt.empty()) prompt.push_back(0);  // "none" cannot encode text: start from token 0
  for (const int32_t id : prompt)
    if (id >= cfg.model.vocab_size)
      throw UserError(cfg.file + ": sample.prompt encodes to token " + std::to_string(id) +
                      ", outside model.vocab_size (" + std::to_string(cfg.model.vocab_size) + ")");

  const TrainingSampler sampler = [&](Model& model, const std::string& title) {
    print_sample(model, job, cfg, codec, prompt, title);
  };
  TrainedModel trained = train_on_job(cfg, job, be, data, signals, coordinated.get(), &sampler);
  // What the memory plan is measured against (tests/e2e/train_plan.sh).
  spdlog::info("peak resident memory of this rank: {:.3f} GB (VmHWM)", peak_resident_bytes() / 1e9);
  if (device_be) spdlog::info("peak device memory of this rank: {:.3f} GB", device_peak_bytes(be) / 1e9);
  if (trained.exit_code != 0) return trained.exit_code;
  // Sampling runs on the first data-parallel replica; all its tensor-parallel ranks take part
  // (the logits are gathered over the vocabulary shards); the leader prints.
  if (!trained.stopped && cfg.sample.tokens > 0)
    print_sample(*trained.model, job, cfg, codec, prompt, "sample");
  job.world->barrier();
  return 0;
}

}  // namespace kervan
