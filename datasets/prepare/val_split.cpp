#include "datasets/prepare/val_split.h"

#include <xxhash.h>

#include <cmath>
#include <queue>
#include <string>

#include "core/error.h"

namespace kervan {

uint64_t document_hash(uint64_t seed, std::string_view key, uint64_t offset) {
  std::string buf(key);
  buf.push_back('\0');
  buf.append(reinterpret_cast<const char*>(&offset), sizeof(offset));
  return XXH3_64bits_withSeed(buf.data(), buf.size(), seed);
}

ValRule val_rule_for_fraction(double fraction) {
  if (!(fraction >= 0.0 && fraction < 1.0)) throw UserError("--val-fraction must be at least 0 and below 1");
  if (fraction == 0.0) return {};
  const double limit = std::ldexp(fraction, 64);
  return {false, limit >= 18446744073709551615.0 ? UINT64_MAX : static_cast<uint64_t>(limit)};
}

ValRule val_rule_for_count(const std::vector<TextSource>& sources, const TextReadOptions& read, uint64_t seed,
                           uint64_t n) {
  if (n == 0) return {};
  if (n > 50'000'000) throw UserError("--val-documents " + std::to_string(n) + " is too many (at most 50000000; use --val-fraction)");
  std::priority_queue<uint64_t> smallest;  // max-heap of the n smallest hashes
  uint64_t total = 0;
  RawDocument doc;
  for (const TextSource& s : sources) {
    DocumentReader reader(s, read);
    while (reader.next(doc)) {
      ++total;
      const uint64_t h = document_hash(seed, s.key, doc.offset);
      if (smallest.size() < n) {
        smallest.push(h);
      } else if (h < smallest.top()) {
        smallest.pop();
        smallest.push(h);
      }
    }
  }
  if (total <= n)
    throw UserError("--val-documents " + std::to_string(n) + " would take every document (the input has " +
                    std::to_string(total) + ")");
  return {false, smallest.top()};
}

}  // namespace kervan
