#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/tokenizer/flat_string_map.h"

namespace kervan {

// GPT-2 style byte-level BPE, giving exactly the ids of tiktoken's "gpt2" encoding:
//  1. text that is not valid UTF-8 is repaired first (each ill-formed byte sequence becomes
//     U+FFFD, as browsers and Python's errors="replace" do), so any input can be encoded;
//  2. with allow_special, special tokens (<|endoftext|>) are cut out and each segment between them
//     is encoded on its own; without it they are ordinary text;
//  3. GPT-2's pre-tokenizer splits a segment into pieces (gpt2_pretokenizer.h);
//  4. each piece's UTF-8 bytes are merged by BPE: repeatedly the adjacent pair whose concatenation
//     has the lowest merge rank (leftmost first), as tiktoken does. A piece that is a token is
//     that token; other pieces are cached per encode call.
// decode(encode(x)) == x for valid UTF-8 x.
class BpeTokenizer {
  struct Scratch;

 public:
  // Reads a GPT-2 style vocabulary: encoder.json (token string -> id, the strings written with
  // GPT-2's byte-to-unicode mapping) and vocab.bpe (merges, in rank order). Entries of
  // encoder.json that no merge makes (GPT-2: <|endoftext|>) are special tokens. Any problem is a
  // UserError naming the file.
  static BpeTokenizer from_files(const std::string& encoder_json, const std::string& vocab_bpe);

  // Encodes with up to `threads` threads; the result does not depend on the thread count (text is
  // split only where a piece always begins).
  std::vector<uint32_t> encode(std::string_view text, bool allow_special = false, int threads = 1) const;

  // Memory of one thread's earlier BPE results, so that encoding many short documents (a corpus
  // of dictionary entries, say) does not redo the BPE of every repeated word. Not thread-safe:
  // one per thread.
  class Cache {
   public:
    Cache();
    ~Cache();
    Cache(Cache&&) noexcept;
    Cache& operator=(Cache&&) noexcept;

   private:
    friend class BpeTokenizer;
    std::unique_ptr<Scratch> scratch_;
  };
  // Appends the ids of `text` (special tokens are ordinary text, as in encode()) to `out`,
  // reusing `cache` across calls. The same ids as encode(text).
  void encode_ordinary(std::string_view text, Cache& cache, std::vector<uint32_t>& out) const;

  // The bytes of the tokens, concatenated; an id outside the vocabulary is a UserError.
  std::string decode(std::span<const uint32_t> ids) const;

  // One more than the largest id (50257 for GPT-2).
  size_t vocab_size() const { return id_bytes_.size(); }
  bool has_id(uint32_t id) const { return id < id_known_.size() && id_known_[id]; }
  // The id of a special token such as "<|endoftext|>", or -1.
  int64_t special_id(std::string_view text) const;

  struct Special {
    std::string text;
    uint32_t id;
  };

 private:
  BpeTokenizer() = default;
  void encode_segment(std::string_view seg, size_t begin, size_t end, Scratch& scratch,
                      std::vector<uint32_t>& out) const;
  void encode_piece(std::string_view piece, Scratch& scratch, std::vector<uint32_t>& out) const;
  void bpe(std::string_view piece, Scratch& scratch, std::vector<uint32_t>& out) const;
  void bpe_long(std::string_view piece, Scratch& scratch, std::vector<uint32_t>& out) const;
  uint32_t rank_of(std::string_view bytes) const;

  FlatStringMap ranks_;                // token bytes -> merge rank (bytes: 0-255, merges: 256+)
  std::vector<uint32_t> rank_to_id_;   // merge rank -> id in encoder.json
  std::vector<std::string> id_bytes_;  // id -> bytes, for decode
  std::vector<uint8_t> id_known_;      // whether an id exists (encoder.json may have holes)
  std::vector<Special> specials_;
};

}  // namespace kervan
