#include "datasets/loader/span_corruption.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace kervan {

namespace {

// Noise tokens and spans of a window of `length` tokens (random_spans_noise_mask's counts).
std::pair<int64_t, int64_t> noise_and_spans(int64_t length, double density, double mean_span) {
  const int64_t noise =
      std::clamp<int64_t>(std::llround(static_cast<double>(length) * density), 1, length - 1);
  const int64_t spans =
      std::max<int64_t>(1, std::llround(static_cast<double>(std::min(noise, length - noise)) / mean_span));
  return {noise, spans};
}

// `items` cut into `segments` non-empty runs at random: segments - 1 distinct cut points among the
// items - 1 gaps (a partial Fisher-Yates), as run lengths in order.
std::vector<int64_t> random_segmentation(int64_t items, int64_t segments, uint64_t key) {
  std::vector<int64_t> gaps(items - 1);
  for (int64_t i = 0; i < items - 1; ++i) gaps[i] = i + 1;
  for (int64_t i = 0; i < segments - 1; ++i) {
    const int64_t pick = i + static_cast<int64_t>(uniform_at(key, i) * static_cast<double>(items - 1 - i));
    std::swap(gaps[i], gaps[pick]);
  }
  std::vector<int64_t> cuts(gaps.begin(), gaps.begin() + (segments - 1));
  std::sort(cuts.begin(), cuts.end());
  std::vector<int64_t> runs;
  int64_t prev = 0;
  for (const int64_t c : cuts) {
    runs.push_back(c - prev);
    prev = c;
  }
  runs.push_back(items - prev);
  return runs;
}

}  // namespace

SpanCorruption::Lengths SpanCorruption::lengths(int64_t inputs_length, double density, double mean_span) {
  auto in_out = [&](int64_t tokens) {
    const int64_t noise = std::llround(static_cast<double>(tokens) * density);
    const int64_t spans = std::llround(static_cast<double>(noise) / mean_span);
    return std::pair{tokens - noise + spans + 1, noise + spans + 1};
  };
  int64_t tokens = inputs_length;
  while (in_out(tokens + 1).first <= inputs_length) ++tokens;
  return {tokens, in_out(tokens).second};
}

SpanCorruption::SpanCorruption(DataLoader& windows, int64_t inputs_length, const SpecialTokens& specials,
                               const SpanCorruptionOptions& opt)
    : windows_(windows),
      inputs_length_(inputs_length),
      lengths_(lengths(inputs_length, opt.noise_density, opt.mean_span_length)),
      specials_(specials),
      opt_(opt),
      window_(lengths_.raw) {
  KERVAN_CHECK(specials.family == "t5" && specials.eot >= 0, "SpanCorruption needs T5's special tokens");
  KERVAN_CHECK(windows.seq_len() == lengths_.raw - 1,
               "SpanCorruption: the loader's windows have the wrong length");
  std::tie(noise_, spans_) = noise_and_spans(lengths_.raw, opt.noise_density, opt.mean_span_length);
  if (spans_ > SpecialTokens::kT5Sentinels)
    throw UserError("train.seq_len = " + std::to_string(inputs_length) + " gives " + std::to_string(spans_) +
                    " corrupted spans per sequence, more than T5's " +
                    std::to_string(SpecialTokens::kT5Sentinels) + " sentinels");
  KERVAN_CHECK(lengths_.raw - noise_ + spans_ + 1 == inputs_length && noise_ + spans_ + 1 == lengths_.targets,
               "span corruption lengths");
}

std::vector<uint8_t> SpanCorruption::noise_mask(int64_t sample) const {
  const int64_t L = lengths_.raw;
  const uint64_t key =
      splitmix64(stream_key(opt_.seed, "t5.spans") ^ splitmix64(static_cast<uint64_t>(sample)));
  const std::vector<int64_t> noise = random_segmentation(noise_, spans_, splitmix64(key ^ 1));
  const std::vector<int64_t> keep = random_segmentation(L - noise_, spans_, splitmix64(key ^ 2));
  std::vector<uint8_t> mask;
  mask.reserve(L);
  for (int64_t s = 0; s < spans_; ++s) {
    mask.insert(mask.end(), keep[s], 0);
    mask.insert(mask.end(), noise[s], 1);
  }
  return mask;
}

void SpanCorruption::make_example(const int32_t* w, int64_t sample, int32_t* inputs, int32_t* decoder_tokens,
                                  int32_t* targets) const {
  const std::vector<uint8_t> mask = noise_mask(sample);
  int64_t n_in = 0, n_out = 0;
  int span = -1;
  for (int64_t i = 0; i < lengths_.raw; ++i) {
    if (!mask[i]) {
      inputs[n_in++] = w[i];
      continue;
    }
    if (i == 0 || !mask[i - 1]) {  // a span begins: one sentinel in the input, and in the targets
      ++span;
      inputs[n_in++] = specials_.sentinel(span);
      targets[n_out++] = specials_.sentinel(span);
    }
    targets[n_out++] = w[i];
  }
  inputs[n_in++] = static_cast<int32_t>(specials_.eot);
  targets[n_out++] = static_cast<int32_t>(specials_.eot);
  KERVAN_CHECK(n_in == inputs_length_ && n_out == lengths_.targets, "span corruption produced wrong lengths");
  decoder_tokens[0] = specials_.pad();
  for (int64_t t = 1; t < n_out; ++t) decoder_tokens[t] = targets[t - 1];
}

void SpanCorruption::fill_batch(int64_t first_sample, int64_t batch, ExampleBatch& out) {
  const int64_t T = inputs_length_, Td = lengths_.targets;
  out.B = batch;
  out.T = T;
  out.T_dec = Td;
  out.tokens.resize(batch * T);
  out.decoder_tokens.resize(batch * Td);
  out.targets.resize(batch * Td);
  out.token_types.clear();
  out.lengths.clear();
  for (int64_t b = 0; b < batch; ++b) {
    windows_.read_window(first_sample + b, window_.data());
    make_example(window_.data(), first_sample + b, &out.tokens[b * T], &out.decoder_tokens[b * Td],
                 &out.targets[b * Td]);
  }
}

}  // namespace kervan
