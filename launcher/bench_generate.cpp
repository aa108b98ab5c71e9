// `kervan bench generate`: GPT generation with the KV cache against the full recompute per token,
// in one run (so the ratio holds even on a loaded machine).
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "core/error.h"
#include "core/model/generate.h"
#include "core/model/gpt.h"
#include "core/rng.h"
#include "launcher/bench.h"
#include "launcher/model_setup.h"

namespace kervan {

namespace {

nlohmann::json speeds(const GenerateStats& s) {
  const double total = s.prefill_s + s.decode_s;
  return {{"prefill_tokens", s.prompt_tokens},
          {"prefill_s", s.prefill_s},
          {"prefill_tokens_per_s", s.prompt_tokens / s.prefill_s},
          {"decode_tokens", s.decode_tokens},
          {"decode_s", s.decode_s},
          {"decode_tokens_per_s", s.decode_tokens / s.decode_s},
          {"recomputed", s.recomputed},
          {"tokens_per_s", (s.decode_tokens + 1) / total}};
}

}  // namespace

int run_bench_generate(const BenchGenerateOptions& o) {
  set_host_threads(static_cast<int>(o.threads));
  auto be = make_cpu_backend();
  const GPTConfig config = preset_shape("gpt", o.preset);
  if (o.prompt_tokens + o.tokens > config.max_seq_len)
    throw UserError("bench generate: --prompt-tokens + --tokens (" +
                    std::to_string(o.prompt_tokens + o.tokens) + ") exceed " + o.preset + "'s context of " +
                    std::to_string(config.max_seq_len) + " (past it both paths recompute a sliding window)");
  GPT model(config, *be, 1, config.max_seq_len);
  model.init_weights(1);
  std::vector<int32_t> prompt(o.prompt_tokens);
  for (int64_t i = 0; i < o.prompt_tokens; ++i)
    prompt[i] = static_cast<int32_t>(splitmix64(i + 1) % config.vocab_size);
  SampleOptions opt{o.tokens, 0.0f, 0, 0};  // greedy: both paths must give the same tokens
  GenerateStats cached, uncached;
  const std::vector<int32_t> a = generate(model, prompt, config.max_seq_len, opt, &cached);
  opt.kv_cache = false;
  const std::vector<int32_t> b = generate(model, prompt, config.max_seq_len, opt, &uncached);
  const double speedup = (uncached.prefill_s + uncached.decode_s) / (cached.prefill_s + cached.decode_s);
  const nlohmann::json j = {{"bench", "generate"},      {"preset", o.preset},
                            {"threads", o.threads},     {"prompt_tokens", o.prompt_tokens},
                            {"tokens", o.tokens},       {"kv_cache_mb", model.kv_cache_bytes() / 1e6},
                            {"cached", speeds(cached)}, {"uncached", speeds(uncached)},
                            {"speedup", speedup},       {"same_tokens", a == b}};
  std::printf("%s\n", j.dump().c_str());
  return a == b ? 0 : 1;
}

}  // namespace kervan
