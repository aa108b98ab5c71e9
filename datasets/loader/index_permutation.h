#pragma once
#include <cstdint>

namespace kervan {

// A pseudo-random permutation of [0, n), evaluated one index at a time in O(1) time and memory:
// a balanced Feistel network on the smallest even-bit power of two >= n, with cycle walking
// (re-encrypting until the value falls below n; the domain is < 4n, so fewer than 4 rounds of
// walking are expected). Any n and key give a bijection, so an epoch's order needs no stored
// shuffle and resuming at any index costs nothing, however large the corpus.
class IndexPermutation {
 public:
  IndexPermutation(uint64_t n, uint64_t key);
  uint64_t size() const { return n_; }
  uint64_t operator()(uint64_t i) const;

 private:
  uint64_t encrypt(uint64_t x) const;

  static constexpr int kRounds = 6;
  uint64_t n_;
  int half_bits_ = 0;
  uint64_t half_mask_ = 0;
  uint64_t round_keys_[kRounds];
};

}  // namespace kervan
