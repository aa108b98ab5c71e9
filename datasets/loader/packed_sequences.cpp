#include "datasets/loader/packed_sequences.h"

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

namespace {

// Window positions [t, t + n) hold tokens p[0 .. n): position i is inputs[i] (i < seq_len) and
// targets[i - 1] (i > 0). Two plain copies, so the compiler vectorises both.
template <typename Token>
void scatter(const Token* p, int64_t t, int64_t n, int64_t seq_len, int32_t* inputs, int32_t* targets) {
  for (int64_t i = t; i < std::min(t + n, seq_len); ++i) inputs[i] = static_cast<int32_t>(p[i - t]);
  for (int64_t i = std::max<int64_t>(t, 1); i < t + n; ++i) targets[i - 1] = static_cast<int32_t>(p[i - t]);
}

}  // namespace

template <typename F>
void PackedSequences::for_each_piece(int64_t window, F f) const {
  KERVAN_CHECK(window >= 0 && window < windows_, "PackedSequences: window out of range");
  uint64_t pos = static_cast<uint64_t>(window) * seq_len_;
  // The span holding `pos`: the last one starting at or before it (empty spans are skipped).
  size_t s = std::upper_bound(starts_.begin(), starts_.end(), pos) - starts_.begin() - 1;
  for (int64_t t = 0; t <= seq_len_;) {
    while (pos >= starts_[s + 1]) ++s;
    const TokenSpan& span = spans_[s];
    const uint64_t offset = pos - starts_[s];
    const int64_t take = std::min<int64_t>(seq_len_ + 1 - t, static_cast<int64_t>(span.count - offset));
    f(static_cast<const char*>(span.data) + offset * span.token_bytes, span.token_bytes, t, take);
    t += take;
    pos += take;
  }
}

void PackedSequences::read(int64_t window, int32_t* inputs, int32_t* targets) const {
  for_each_piece(window, [&](const char* p, uint32_t bytes, int64_t t, int64_t n) {
    if (bytes == 2)
      scatter(reinterpret_cast<const uint16_t*>(p), t, n, seq_len_, inputs, targets);
    else
      scatter(reinterpret_cast<const uint32_t*>(p), t, n, seq_len_, inputs, targets);
  });
}

void PackedSequences::read_window(int64_t window, int32_t* tokens) const {
  for_each_piece(window, [&](const char* p, uint32_t bytes, int64_t t, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      tokens[t + i] = bytes == 2 ? static_cast<int32_t>(reinterpret_cast<const uint16_t*>(p)[i])
                                 : static_cast<int32_t>(reinterpret_cast<const uint32_t*>(p)[i]);
  });
}

}  // namespace kervan
