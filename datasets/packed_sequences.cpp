#include "datasets/packed_sequences.h"

#include <algorithm>

#include "core/error.h"

namespace kervan {

PackedSequences::PackedSequences(std::vector<TokenSpan> spans, int64_t seq_len)
    : spans_(std::move(spans)), seq_len_(seq_len) {
  KERVAN_CHECK(seq_len > 0, "PackedSequences: seq_len must be positive");
  starts_.push_back(0);
  for (const TokenSpan& s : spans_) starts_.push_back(starts_.back() + s.count);
  const uint64_t n = starts_.back();
  windows_ = n > 0 ? static_cast<int64_t>((n - 1) / static_cast<uint64_t>(seq_len)) : 0;
}

void PackedSequences::read(int64_t window, int32_t* inputs, int32_t* targets) const {
  KERVAN_CHECK(window >= 0 && window < windows_, "PackedSequences: window out of range");
  // Token t of the window (t = 0 .. seq_len) is inputs[t] (t < seq_len) and targets[t - 1] (t > 0).
  auto put = [&](int64_t t, int32_t token) {
    if (t < seq_len_) inputs[t] = token;
    if (t > 0) targets[t - 1] = token;
  };
  uint64_t pos = static_cast<uint64_t>(window) * seq_len_;
  // The span holding `pos`: the last one starting at or before it (empty spans are skipped).
  size_t s = std::upper_bound(starts_.begin(), starts_.end(), pos) - starts_.begin() - 1;
  for (int64_t t = 0; t <= seq_len_;) {
    while (pos >= starts_[s + 1]) ++s;
    const TokenSpan& span = spans_[s];
    const uint64_t offset = pos - starts_[s];
    const int64_t take = std::min<int64_t>(seq_len_ + 1 - t, static_cast<int64_t>(span.count - offset));
    if (span.token_bytes == 2) {
      const uint16_t* p = static_cast<const uint16_t*>(span.data) + offset;
      for (int64_t i = 0; i < take; ++i) put(t + i, p[i]);
    } else {
      const uint32_t* p = static_cast<const uint32_t*>(span.data) + offset;
      for (int64_t i = 0; i < take; ++i) put(t + i, static_cast<int32_t>(p[i]));
    }
    t += take;
    pos += take;
  }
}

}  // namespace kervan
