#include "datasets/loader/index_permutation.h"

#include "core/error.h"
#include "core/rng.h"

namespace kervan {

IndexPermutation::IndexPermutation(uint64_t n, uint64_t key) : n_(n) {
  KERVAN_CHECK(n > 0 && n < (uint64_t{1} << 62), "IndexPermutation: n out of range");
  int bits = 0;
  while ((uint64_t{1} << bits) < n) ++bits;
  half_bits_ = (bits + 1) / 2;
  half_mask_ = (uint64_t{1} << half_bits_) - 1;
  for (int r = 0; r < kRounds; ++r) round_keys_[r] = splitmix64(key ^ splitmix64(static_cast<uint64_t>(r) + 1));
}

uint64_t IndexPermutation::encrypt(uint64_t x) const {
  uint64_t left = x >> half_bits_, right = x & half_mask_;
  for (int r = 0; r < kRounds; ++r) {
    const uint64_t mixed = left ^ (splitmix64(right ^ round_keys_[r]) & half_mask_);
    left = right;
    right = mixed;
  }
  return (left << half_bits_) | right;
}

uint64_t IndexPermutation::operator()(uint64_t i) const {
  KERVAN_CHECK(i < n_, "IndexPermutation: index out of range");
  uint64_t x = encrypt(i);
  while (x >= n_) x = encrypt(x);  // cycle walking stays inside [0, n)
  return x;
}

}  // namespace kervan
