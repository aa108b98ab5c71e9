#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datasets/loader/index_permutation.h"
#include "datasets/loader/packed_sequences.h"
#include "datasets/loader/token_source.h"

namespace kervan {

// Where sample k of a run comes from.
struct SampleRef {
  int source;      // index into the loader's sources
  int64_t epoch;   // of that source
  int64_t window;  // in that source's packed sequences
  bool operator==(const SampleRef&) const = default;
};

// The training sample order, Megatron style: the run consumes samples 0, 1, 2, ... and the trainer
// tracks one global consumed_samples counter; global batch s of size G is samples [s*G, (s+1)*G),
// and each data-parallel rank reads its own contiguous part of it. Sample k is a pure function of
// (seed, sources and weights, seq_len, k):
//  - blending: sample k goes to the source whose share lags its weight most, i.e. the d that
//    maximises w_d * (k + 1) - (samples source d got among 0..k-1), lowest d on ties (Megatron's
//    rule), computed exactly in integers. After any k samples each source's count is within one
//    of w_d * k.
//  - within a source: its j-th sample is window perm_e(j mod W) of epoch e = j / W, where W is its
//    window count and perm_e an IndexPermutation keyed by (seed, source index, e). No window
//    repeats within an epoch; each epoch has a fresh order.
// Resuming at any consumed_samples value continues the order exactly, whatever the DP size. (With
// several sources, the first call at sample k walks the blend from 0 to k once.)
class DataLoader {
 public:
  struct Source {
    std::unique_ptr<TokenSource> tokens;
    double weight = 1.0;
  };
  // With shuffle off, a single source is read in window order (for evaluation).
  DataLoader(std::vector<Source> sources, int64_t seq_len, uint64_t seed, bool shuffle = true);

  SampleRef locate(int64_t k);
  // inputs/targets [batch, seq_len] from samples first_sample .. first_sample + batch - 1.
  void fill_batch(int64_t first_sample, int64_t batch, int32_t* inputs, int32_t* targets);
  // The seq_len + 1 tokens of sample k's window, as they are (objectives start from these).
  void read_window(int64_t k, int32_t* tokens);
  int64_t seq_len() const;
  // inputs/targets [seq_len] of window w of source d in stream order (no blend, no shuffle): what a
  // recurrent model's carried-state order reads, consecutive windows of one stream per row.
  void read_source_window(int d, int64_t window, int32_t* inputs, int32_t* targets) const {
    sources_[d].sequences->read(window, inputs, targets);
  }

  int num_sources() const { return static_cast<int>(sources_.size()); }
  const TokenSource& source(int d) const { return *sources_[d].tokens; }
  double weight(int d) const { return sources_[d].weight; }  // normalised to sum 1
  int64_t num_windows(int d) const { return sources_[d].sequences->num_windows(); }

 private:
  struct Opened {
    std::unique_ptr<TokenSource> tokens;
    double weight;
    int64_t share;  // weight as an integer share of 2^kShareBits, what the blend computes with
    std::unique_ptr<PackedSequences> sequences;
    std::optional<IndexPermutation> perm;  // of perm_epoch
    int64_t perm_epoch = -1;
    int64_t taken = 0;  // samples this source got among 0 .. cursor_ - 1
  };
  // Source and per-source index of sample k (advances or restarts the blend cursor).
  std::pair<int, int64_t> blend(int64_t k);

  std::vector<Opened> sources_;
  uint64_t seed_;
  static constexpr int kShareBits = 24;
  static constexpr int64_t kMaxBlendSamples = int64_t{1} << 38;  // 2.7e11 samples
  int64_t share_total_ = 0;
  bool shuffle_;
  int64_t cursor_ = 0;
};

// The global batch layout: the first sample of micro-step `micro` on data-parallel rank `dp_rank`
// in the step that starts at consumed_samples. A step of grad_accum micro-steps consumes
// grad_accum * dp_size * micro_batch samples; micro-step m of rank r reads the contiguous block
// [consumed + (m * dp_size + r) * micro_batch, + micro_batch), so ranks never share a sample.
constexpr int64_t first_sample_of(int64_t consumed_samples, int64_t micro, int64_t dp_size, int64_t dp_rank,
                                  int64_t micro_batch) {
  return consumed_samples + (micro * dp_size + dp_rank) * micro_batch;
}

}  // namespace kervan
