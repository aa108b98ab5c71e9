#pragma once
#include <cstdint>
#include <vector>

namespace kervan {

// Tokens held elsewhere (a memory-mapped shard or llm.c file): uint16 or uint32 elements.
struct TokenSpan {
  const void* data;
  uint32_t token_bytes;  // 2 or 4
  uint64_t count;
};

// Packs a token stream into training sequences. The spans (a corpus split's shards, in manifest
// order) are read as one stream of whole documents, each ending in the end-of-text token, and cut
// into W = (n - 1) / seq_len windows of seq_len + 1 tokens: window w starts at w * seq_len, so
// neighbours share one token (the last target of one is the first input of the next), windows
// may cross document and shard boundaries, and fewer than seq_len tokens at the end go unused.
class PackedSequences {
 public:
  PackedSequences(std::vector<TokenSpan> spans, int64_t seq_len);
  int64_t seq_len() const { return seq_len_; }
  int64_t num_windows() const { return windows_; }
  uint64_t num_tokens() const { return starts_.back(); }

  // inputs[t] = token w*seq_len + t, targets[t] = token w*seq_len + t + 1, for t < seq_len.
  // Safe to call from several threads.
  void read(int64_t window, int32_t* inputs, int32_t* targets) const;
  // The window's seq_len + 1 tokens as they are (what the BERT and T5 objectives start from).
  void read_window(int64_t window, int32_t* tokens) const;

 private:
  // Calls f(token pointer, token_bytes, first window position, count) for each span piece of the
  // window, in order.
  template <typename F>
  void for_each_piece(int64_t window, F f) const;
  std::vector<TokenSpan> spans_;
  std::vector<uint64_t> starts_;  // starts_[s]: first stream position of span s; back(): total
  int64_t seq_len_, windows_;
};

}  // namespace kervan
