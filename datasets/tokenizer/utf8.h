#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace kervan {

// UTF-8 helpers for the tokenizer. Text that is not valid UTF-8 is repaired the way the WHATWG
// Encoding standard (browsers, node's TextDecoder, Python's errors="replace", Rust's
// from_utf8_lossy) does it: each maximal ill-formed subsequence becomes one U+FFFD.

bool is_valid_utf8(std::string_view s);

// `s` with every ill-formed subsequence replaced by U+FFFD (EF BF BD); `s` itself when valid.
std::string replace_invalid_utf8(std::string_view s);

// Decodes the code point starting at p in *valid* UTF-8; returns its length in bytes (1-4).
inline int decode_utf8(const unsigned char* p, uint32_t* cp) {
  const unsigned char c = p[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c < 0xE0) {
    *cp = ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    return 2;
  }
  if (c < 0xF0) {
    *cp = ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    return 3;
  }
  *cp = ((c & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
  return 4;
}

}  // namespace kervan
