#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "datasets/prepare/text_sources.h"

namespace kervan {

// The validation split of `kervan prepare`. Document d of source s goes to "val" when
// document_hash(seed, s.key, offset of d in the decompressed file) is at most a limit: for a
// fraction F, F x 2^64; for a count N, the N-th smallest hash of the corpus (found by a first pass
// that reads and splits every file without tokenizing). The choice depends on neither the order
// nor the number of workers, nor on where the corpus lies (keys are relative paths).

// XXH3-64 with `seed` of key + '\0' + offset (8 bytes, native order).
uint64_t document_hash(uint64_t seed, std::string_view key, uint64_t offset);

// Which documents go to "val": hash <= max_hash, unless none.
struct ValRule {
  bool none = true;
  uint64_t max_hash = 0;
  bool is_val(uint64_t hash) const { return !none && hash <= max_hash; }
};

// --val-fraction: UserError unless 0 <= fraction < 1; 0 is no split.
ValRule val_rule_for_fraction(double fraction);
// --val-documents: the first pass reads every source (UserError for bad input, like the second
// pass) and keeps the n smallest hashes. UserError when n would take every document.
ValRule val_rule_for_count(const std::vector<TextSource>& sources, const TextReadOptions& read, uint64_t seed,
                           uint64_t n);

}  // namespace kervan
