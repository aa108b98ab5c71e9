#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/tokenizer/flat_string_map.h"

namespace kervan {

struct WordCount {
  std::string bytes;  // one pre-token piece (UTF-8)
  uint64_t count;
};

// Counts the pre-token pieces of a corpus, the input of BPE training. Text is prepared as encode()
// prepares it: ill-formed UTF-8 becomes U+FFFD, then GPT-2's pre-tokenizer splits it. Each
// "<|endoftext|>" is cut out as a document separator (never learned from): the text on either side
// is split on its own, as encode(allow_special=true) does. Each file (or add_text call) is a text
// on its own: no piece spans two.
//
// Files are streamed in chunks cut where a piece always begins (after "\n" + non-space), and each
// chunk is counted by `threads` threads into per-thread tables; the counts do not depend on the
// thread count or the chunk size. A file with no such cut (no newline before a non-space ASCII
// character) is held whole.
class BpeWordCounter {
 public:
  explicit BpeWordCounter(int threads = 1, size_t chunk_bytes = size_t{32} << 20);

  // UserError naming the file when it cannot be opened or read.
  void add_file(const std::string& path);
  void add_text(std::string_view text);

  // Bytes read so far (before UTF-8 repair) and pieces counted.
  uint64_t bytes() const { return bytes_; }
  uint64_t pieces() const { return pieces_; }

  // The distinct pieces and their counts, sorted by bytes.
  std::vector<WordCount> sorted() const;

 private:
  struct Table {
    FlatStringMap index{1 << 16};  // piece -> position in counts
    std::vector<uint64_t> counts;
  };
  struct Range {
    std::string_view text;  // the segment, plus lookahead past `end` where the text goes on
    size_t begin, end;
  };
  // Counts text[0, end): text may hold one more byte that only serves the pre-tokenizer's lookahead.
  void count_chunk(std::string_view text, size_t end);

  int threads_;
  size_t chunk_bytes_;
  std::vector<Table> tables_;  // one per thread
  uint64_t bytes_ = 0, pieces_ = 0;
};

}  // namespace kervan
