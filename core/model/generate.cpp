#include "core/model/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace kervan {

namespace {

// Picks a token from logits[0, vocab) after temperature and top-k, with the uniform draw u.
int32_t pick(const std::vector<float>& logits, int64_t vocab, const SampleOptions& opt, double u) {
  if (opt.temperature <= 0.0f)
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.begin() + vocab) - logits.begin());
  std::vector<int32_t> ids(vocab);
  for (int64_t i = 0; i < vocab; ++i) ids[i] = static_cast<int32_t>(i);
  int64_t k = opt.top_k > 0 ? std::min(opt.top_k, vocab) : vocab;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  const float mx = logits[ids[0]];
  std::vector<double> p(k);
  double sum = 0.0;
  for (int64_t i = 0; i < k; ++i) sum += p[i] = std::exp((logits[ids[i]] - mx) / opt.temperature);
  if (opt.top_p < 1.0f) {  // ids[0, k) are sorted by probability: keep the nucleus
    std::sort(ids.begin(), ids.begin() + k, [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (int64_t i = 0; i < k; ++i) p[i] = std::exp((logits[ids[i]] - mx) / opt.temperature);
    double acc = 0.0;
    int64_t keep = 0;
    while (keep < k && acc < opt.top_p * sum) acc += p[keep++];
    k = std::max<int64_t>(keep, 1);
    sum = 0.0;
    for (int64_t i = 0; i < k; ++i) sum += p[i];
  }
  double acc = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    acc += p[i] / sum;
    if (u < acc) return ids[i];
  }
  return ids[k - 1];
}

}  // namespace

std::vector<int32_t> generate(Model& model, std::vector<int32_t> prompt, int64_t window,
                              const SampleOptions& opt, GenerateStats* stats) {
  KERVAN_CHECK(!prompt.empty(), "generate needs a prompt of at least one token");
  KERVAN_CHECK(model.can_generate() && window <= model.max_context(),
               "generate: the model cannot take the window");
  const int64_t Vp = model.logits_width(), vocab = model.vocab_size();
  const uint64_t key = stream_key(opt.seed, "sample");
  const bool cached = opt.kv_cache && model.has_kv_cache();
  GenerateStats st;
  std::vector<float> row(Vp);
  using Clock = std::chrono::steady_clock;
  for (int64_t i = 0; i < opt.max_new_tokens; ++i) {
    const auto t0 = Clock::now();
    const int64_t T = std::min<int64_t>(prompt.size(), window);
    const int32_t* ctx = prompt.data() + prompt.size() - T;
    if (cached && i == 0) {
      model.cache_prefill(ctx, T, row.data());
    } else if (cached && model.cached_positions() < window) {
      model.cache_decode(prompt.back(), row.data());
    } else {
      model.next_token_logits(ctx, T, row.data());
      if (i > 0) ++st.recomputed;
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (i == 0) {
      st.prompt_tokens = T;
      st.prefill_s = s;
    } else {
      ++st.decode_tokens;
      st.decode_s += s;
    }
    prompt.push_back(pick(row, vocab, opt, uniform_at(key, i)));
    if (prompt.back() == opt.stop_token) break;
  }
  if (cached) model.release_cache();
  if (stats) *stats = st;
  return prompt;
}

std::vector<int32_t> greedy_seq2seq(T5& model, const std::vector<int32_t>& input, int32_t start, int32_t stop,
                                    int64_t max_new) {
  KERVAN_CHECK(!input.empty(), "greedy_seq2seq needs an input");
  const int64_t vocab = model.vocab_size();
  std::vector<float> row(model.logits_width());
  std::vector<int32_t> decoder{start};
  const int32_t length = static_cast<int32_t>(input.size());
  while (static_cast<int64_t>(decoder.size()) <= max_new) {
    Batch b{1, length, input.data(), nullptr};
    b.lengths = &length;
    b.T_dec = static_cast<int64_t>(decoder.size());
    b.decoder_tokens = decoder.data();
    model.forward(b);
    model.decoder_logits_row(b.T_dec - 1, row.data());
    decoder.push_back(static_cast<int32_t>(std::max_element(row.begin(), row.begin() + vocab) - row.begin()));
    if (decoder.back() == stop) break;
  }
  return {decoder.begin() + 1, decoder.end()};
}

}  // namespace kervan
