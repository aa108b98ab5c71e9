#pragma once
#include <cstddef>
#include <string_view>
#include <vector>

#include "datasets/tokenizer/unicode_classes.h"

namespace kervan {

// GPT-2's pre-tokenizer: splits text into the pieces that BPE then encodes one by one, exactly as
// the regex  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+  does
// under tiktoken, but as a hand-written scanner (no regex engine, no backtracking).

// End of the piece that starts at `pos` in `text` (valid UTF-8; pos < text.size()). `text` is the
// whole segment: the pattern's lookahead (?!\S) may look past where a caller stops.
size_t gpt2_piece_end(std::string_view text, size_t pos, const CharClasses& classes);

// All pieces of `text` (for tests and tools; the encoder calls gpt2_piece_end directly).
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

// Whether a piece always starts at `pos`, whatever comes before: true after a newline that is
// followed by an ASCII character other than whitespace (a piece never spans "\n" + non-space).
// Text cut at such points and encoded in parts gives the same tokens as encoded whole.
bool is_gpt2_safe_split(std::string_view text, size_t pos, const CharClasses& classes);

}  // namespace kervan
