#pragma once
#include <cstdint>
#include <vector>

#include "datasets/loader/data_loader.h"
#include "datasets/loader/example_batch.h"
#include "datasets/tokenizer/special_tokens.h"

namespace kervan {

struct SpanCorruptionOptions {
  double noise_density = 0.15;    // fraction of a window's tokens corrupted
  double mean_span_length = 3.0;  // mean length of a corrupted span
  uint64_t seed = 0;
};

// T5's span corruption (Raffel et al. 2020, as Hugging Face's run_t5_mlm_flax.py does it), made in
// the loader deterministically from (seed, sample index). A window of L raw tokens has
// N = round(L * density) noise tokens in S = round(N / mean_span) spans (both at least 1), placed
// by cutting the noise and the non-noise tokens each into S non-empty runs at random and
// interleaving them, non-noise first. Then
//   encoder input:  the non-noise tokens, each noise span replaced by one sentinel
//                   <extra_id_0>, <extra_id_1>, ...; then end-of-text       (L - N + S + 1 tokens)
//   targets:        each sentinel followed by the span it replaced; then end-of-text  (N + S + 1)
//   decoder input:  the targets shifted right behind [PAD] (the start token)
// L is chosen for the encoder length T as the published recipe does (lengths()): the largest L whose
// input fits T exactly (T = 512: L = 568, targets 114), so batches need no padding.
class SpanCorruption {
 public:
  struct Lengths {
    int64_t raw, targets;
  };
  // Hugging Face's compute_input_and_target_lengths.
  static Lengths lengths(int64_t inputs_length, double noise_density, double mean_span_length);

  // UserError when a window needs more spans than T5's 100 sentinels (a very long train.seq_len).
  SpanCorruption(DataLoader& windows, int64_t inputs_length, const SpecialTokens& specials,
                 const SpanCorruptionOptions& opt);
  // The loader's seq_len for an encoder of inputs_length tokens (windows of L tokens).
  static int64_t loader_seq_len(int64_t inputs_length, const SpanCorruptionOptions& opt) {
    return lengths(inputs_length, opt.noise_density, opt.mean_span_length).raw - 1;
  }
  int64_t inputs_length() const { return inputs_length_; }
  int64_t targets_length() const { return lengths_.targets; }

  // Examples first_sample .. first_sample + batch - 1 (tokens, decoder_tokens, targets).
  void fill_batch(int64_t first_sample, int64_t batch, ExampleBatch& out);
  // Which of a window's L tokens sample `sample` corrupts (1) and keeps (0).
  std::vector<uint8_t> noise_mask(int64_t sample) const;
  // One example from the L tokens of `window`: inputs [T], decoder tokens and targets [T_dec].
  void make_example(const int32_t* window, int64_t sample, int32_t* inputs, int32_t* decoder_tokens,
                    int32_t* targets) const;

 private:
  DataLoader& windows_;
  int64_t inputs_length_;
  Lengths lengths_;
  int64_t noise_, spans_;
  SpecialTokens specials_;
  SpanCorruptionOptions opt_;
  std::vector<int32_t> window_;
};

}  // namespace kervan
