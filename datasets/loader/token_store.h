#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "datasets/loader/packed_sequences.h"

namespace kervan {

// Tokens [first, first + count) of a split's token stream (its shards' tokens, in order).
struct StreamRange {
  uint64_t first, count;
};

// A corpus split whose tokens are not on a local disk but fetched on demand (from a
// coordinator: coordinator/remote_token_store.h). Its spans have fixed addresses for the store's
// life, but only the ranges of the latest require() are guaranteed to hold the split's tokens.
// The loader calls require() before reading a batch and prefetch() for batches to come, both
// from one thread.
class TokenStore {
 public:
  virtual ~TokenStore() = default;
  virtual std::vector<TokenSpan> spans() const = 0;
  // Blocks until every range is readable at the spans' addresses; they stay readable until the
  // next require(). Errors (the coordinator gone for good, a full cache disk) are UserErrors.
  virtual void require(std::span<const StreamRange> ranges) = 0;
  // Starts fetching ranges a later require() will ask for; returns at once.
  virtual void prefetch(std::span<const StreamRange> ranges) = 0;
};

}  // namespace kervan
