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

  SampleRef locate(int64_t k) { return locate(k, reading_); }
  // inputs/targets [batch, seq_len] from samples first_sample .. first_sample + batch - 1. Sources
  // served over the network (TokenSource::store()) get the batch's tokens required first, and,
  // with set_read_ahead(), the batches to come prefetched.
  void fill_batch(int64_t first_sample, int64_t batch, int32_t* inputs, int32_t* targets);
  // Prefetch the next `batches` batches of served sources on every fill_batch(), assuming the
  // distance between successive calls' first samples stays what it was between the last two (in
  // training: data-parallel size x micro-batch; see first_sample_of). 0 turns it off.
  void set_read_ahead(int64_t batches) { read_ahead_ = batches; }
  // The seq_len + 1 tokens of sample k's window, as they are (objectives start from these); a
  // served source's window is fetched first if it is not at hand.
  void read_window(int64_t k, int32_t* tokens);
  // For served sources: what fill_batch() does before reading, for callers that read the batch's
  // windows one by one with read_window() (the objectives): the batch's tokens required and, with
  // set_read_ahead(), the batches to come prefetched. Nothing for local sources.
  void fetch(int64_t first_sample, int64_t batch);
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
  };
  // A position in the order: how far the blend has been walked and each source's permutation of
  // the epoch last asked for. Reading and read-ahead each keep one, so looking ahead never makes
  // the reading cursor replay the blend from the start.
  struct Cursor {
    int64_t next = 0;            // samples 0 .. next - 1 are blended
    std::vector<int64_t> taken;  // per source: samples it got among them
    std::vector<std::optional<IndexPermutation>> perm;
    std::vector<int64_t> perm_epoch;
  };
  SampleRef locate(int64_t k, Cursor& cursor);
  // Source and per-source index of sample k (advances or restarts the cursor's blend).
  std::pair<int, int64_t> blend(int64_t k, Cursor& cursor);
  // The token ranges of the samples, per source (empty for local sources).
  std::vector<std::vector<StreamRange>> stream_ranges(const std::vector<SampleRef>& refs) const;
  void prefetch_ahead(int64_t first_sample, int64_t batch);

  std::vector<Opened> sources_;
  uint64_t seed_;
  static constexpr int kShareBits = 24;
  static constexpr int64_t kMaxBlendSamples = int64_t{1} << 38;  // 2.7e11 samples
  int64_t share_total_ = 0;
  bool shuffle_;
  bool served_ = false;  // some source has a TokenStore
  Cursor reading_, ahead_;
  int64_t read_ahead_ = 0;
  int64_t last_first_ = -1, stride_ = 0, prefetched_until_ = -1;  // read-ahead's view of the calls
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
