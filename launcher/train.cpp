#include "launcher/train.h"

#include <omp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "core/model/generate.h"
#include "core/model/gpt.h"
#include "core/optim/adamw.h"
#include "datasets/llmc_token_file.h"
#include "datasets/window_sampler.h"
#include "launcher/gemm_peak.h"

namespace kervan {

namespace {

std::string decode_for_display(const std::vector<int32_t>& ids, const std::string& tokenizer) {
  std::string out;
  if (tokenizer == "bytes") {
    for (int32_t id : ids) out += static_cast<char>(id);
  } else {
    for (int32_t id : ids) out += std::to_string(id) + " ";
  }
  return out;
}

std::vector<int32_t> encode_prompt(const std::string& prompt, const std::string& tokenizer, int64_t vocab) {
  std::vector<int32_t> ids;
  if (tokenizer == "bytes")
    for (unsigned char c : prompt) ids.push_back(c);
  if (ids.empty()) ids.push_back(0);
  for (int32_t& id : ids) id = static_cast<int32_t>(id % vocab);
  return ids;
}

}  // namespace

int run_train(const RunConfig& cfg) {
  const auto& t = cfg.train;
  auto be = make_cpu_backend();
  be->set_num_threads(t.threads > 0 ? static_cast<int>(t.threads) : omp_get_num_procs());

  LlmcTokenFile data(cfg.data.path, cfg.model.vocab_size);
  WindowSampler sampler(data.size(), t.seq_len, static_cast<uint64_t>(t.seed));

  std::ofstream metrics;
  if (!cfg.log.metrics_file.empty()) {
    metrics.open(cfg.log.metrics_file, std::ios::trunc);
    if (!metrics) throw UserError(cfg.file + ": log.metrics_file: cannot write '" + cfg.log.metrics_file + "'");
  }

  GPT model(cfg.model, *be, t.micro_batch, t.seq_len);
  model.init_weights(static_cast<uint64_t>(t.seed));
  AdamW opt(model.params(), *be, {t.beta1, t.beta2, t.eps, t.weight_decay});
  const LrSchedule schedule = cfg.schedule();
  const double peak_flops = measure_gemm_flops(*be, 1024, 3);
  const int64_t params = cfg.model.num_params();
  const int64_t tokens_per_step = t.micro_batch * t.seq_len * t.grad_accum;
  spdlog::info("model: {} layers, {} heads, d_model {}, vocab {} (padded {}), {:.2f}M parameters",
               cfg.model.n_layer, cfg.model.n_head, cfg.model.d_model, cfg.model.vocab_size,
               cfg.model.padded_vocab(), params / 1e6);
  spdlog::info("data: {} ({} tokens, {} windows of {}); {} tokens per step; {} threads; GEMM peak {:.1f} GFLOP/s",
               cfg.data.path, data.size(), sampler.num_windows(), t.seq_len + 1, tokens_per_step,
               be->num_threads(), peak_flops / 1e9);

  std::vector<int32_t> inputs(t.micro_batch * t.seq_len), targets(inputs.size());
  int64_t consumed_samples = 0;
  for (int64_t step = 0; step < t.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    model.params().zero_grad(*be);
    double loss = 0.0;
    for (int64_t micro = 0; micro < t.grad_accum; ++micro) {
      sampler.fill_batch(data.tokens(), consumed_samples, t.micro_batch, inputs.data(), targets.data());
      consumed_samples += t.micro_batch;
      loss += model.forward(inputs.data(), targets.data(), t.micro_batch, t.seq_len) / t.grad_accum;
      model.backward(1.0f / static_cast<float>(t.grad_accum));
    }
    const float norm = grad_global_norm(*be, model.params());
    const float lr = schedule.at(step);
    opt.step(lr, clip_factor(norm, t.grad_clip));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      spdlog::error("step {}: loss {} / grad norm {} is not finite; stopping", step, loss, norm);
      return 3;
    }
    const double tps = tokens_per_step / secs;
    const double mfu = 6.0 * params * tps / peak_flops;
    if (metrics) {
      nlohmann::json j = {{"step", step},          {"loss", static_cast<float>(loss)},
                          {"lr", lr},              {"grad_norm", norm},
                          {"tokens_per_s", tps},   {"mfu", mfu},
                          {"ms_per_step", secs * 1e3}, {"consumed_samples", consumed_samples}};
      metrics << j.dump() << '\n' << std::flush;
    }
    if (step % cfg.log.every == 0 || step == t.steps - 1)
      spdlog::info("step {:>5}/{} | loss {:.4f} | lr {:.2e} | grad norm {:.3f} | {:.0f} tok/s | MFU {:.1f}%",
                   step, t.steps, loss, lr, norm, tps, 100 * mfu);
  }

  if (cfg.sample.tokens > 0) {
    SampleOptions so{cfg.sample.tokens, cfg.sample.temperature, cfg.sample.top_k, static_cast<uint64_t>(t.seed)};
    const auto prompt = encode_prompt(cfg.sample.prompt, cfg.data.tokenizer, cfg.model.vocab_size);
    const auto out = generate(model, prompt, t.seq_len, so);
    std::printf("----- sample (%lld tokens) -----\n%s\n-----\n", static_cast<long long>(cfg.sample.tokens),
                decode_for_display(out, cfg.data.tokenizer).c_str());
  }
  return 0;
}

}  // namespace kervan
