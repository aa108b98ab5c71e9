#include "datasets/tokenizer/gpt2_pretokenizer.h"

#include <cstdint>

#include "datasets/tokenizer/utf8.h"

namespace kervan {

namespace {
// The class of the code point at s[i] and its length in bytes.
inline CharClass class_at(const unsigned char* s, size_t i, const CharClasses& classes, int* len) {
  uint32_t cp;
  *len = decode_utf8(s + i, &cp);
  return classes.of(cp);
}

// End of the run of code points of class `cls` starting at i.
inline size_t run_end(const unsigned char* s, size_t i, size_t n, CharClass cls, const CharClasses& classes) {
  int len;
  while (i < n) {
    if (s[i] < 0x80) {  // ASCII needs no decoding
      if (classes.of(s[i]) != cls) break;
      ++i;
    } else {
      if (class_at(s, i, classes, &len) != cls) break;
      i += len;
    }
  }
  return i;
}
}  // namespace

size_t gpt2_piece_end(std::string_view text, size_t p, const CharClasses& classes) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  // 's|'t|'re|'ve|'m|'ll|'d  (ASCII apostrophe, lower case only, as in GPT-2)
  if (s[p] == '\'' && p + 1 < n) {
    const unsigned char a = s[p + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return p + 2;
    if (p + 2 < n) {
      const unsigned char b = s[p + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return p + 3;
    }
  }
  //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+ : a run of one class, optionally after one space.
  const size_t q = (s[p] == ' ' && p + 1 < n) ? p + 1 : p;
  int len;
  const CharClass c = class_at(s, q, classes, &len);
  if (c != CharClass::kSpace) return run_end(s, q + len, n, c, classes);
  // \s+(?!\S) | \s+ : the whitespace run, less its last character when a non-space follows
  // (that character then starts the next piece, e.g. " " before a word), unless it is alone.
  size_t end = p, last = p;
  while (end < n) {
    if (class_at(s, end, classes, &len) != CharClass::kSpace) break;
    last = end;
    end += len;
  }
  if (end == n || last == p) return end;
  return last;
}

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  const CharClasses& classes = CharClasses::get();
  std::vector<std::string_view> pieces;
  for (size_t p = 0; p < text.size();) {
    const size_t e = gpt2_piece_end(text, p, classes);
    pieces.push_back(text.substr(p, e - p));
    p = e;
  }
  return pieces;
}

bool is_gpt2_safe_split(std::string_view text, size_t pos, const CharClasses& classes) {
  if (pos == 0 || pos >= text.size() || text[pos - 1] != '\n') return false;
  const auto c = static_cast<unsigned char>(text[pos]);
  return c < 0x80 && classes.of(c) != CharClass::kSpace;
}

}  // namespace kervan
