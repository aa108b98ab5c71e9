#pragma once
#include <cstdint>
#include <vector>

namespace kervan {

// Cuts a token stream of n tokens into W = (n - 1) / seq_len windows of seq_len + 1 tokens
// (window w starts at w * seq_len; neighbours share one token, the last target of one is the
// first input of the next). Sample k of a run is window perm_e[k mod W] of epoch e = k / W,
// where perm_e is a permutation drawn from (seed, e). The order is therefore a pure function of
// (seed, n, seq_len, k): resuming at any consumed-sample count continues it exactly, and no window
// repeats within an epoch.
class WindowSampler {
 public:
  WindowSampler(int64_t n_tokens, int64_t seq_len, uint64_t seed);
  int64_t num_windows() const { return windows_; }
  // Token offset of sample `k`.
  int64_t window_start(int64_t k);

  // Fills inputs/targets [batch, seq_len] with samples first_sample .. first_sample + batch - 1.
  void fill_batch(const uint16_t* tokens, int64_t first_sample, int64_t batch, int32_t* inputs,
                  int32_t* targets);

 private:
  int64_t seq_len_, windows_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<int64_t> perm_;
};

}  // namespace kervan
