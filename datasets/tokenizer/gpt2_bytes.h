#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace kervan {

// GPT-2's byte-to-unicode mapping. Its vocabulary files write every byte as a visible character:
// the 188 printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) as themselves, the
// other 68 bytes as U+0100, U+0101, ... in byte order. GPT-2's encoder.json gives the single bytes
// ids 0-255 in the same order: the printable bytes first, then the others.

inline bool gpt2_byte_is_printable(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

// byte -> code point that stands for it.
inline std::array<uint16_t, 256> gpt2_byte_to_unicode() {
  std::array<uint16_t, 256> table{};
  uint16_t shifted = 256;
  for (int b = 0; b < 256; ++b) table[b] = gpt2_byte_is_printable(b) ? static_cast<uint16_t>(b) : shifted++;
  return table;
}

// id (0-255) -> byte, as in GPT-2's encoder.json.
inline std::array<uint8_t, 256> gpt2_byte_ids() {
  std::array<uint8_t, 256> order{};
  int i = 0;
  for (int b = 0; b < 256; ++b)
    if (gpt2_byte_is_printable(b)) order[i++] = static_cast<uint8_t>(b);
  for (int b = 0; b < 256; ++b)
    if (!gpt2_byte_is_printable(b)) order[i++] = static_cast<uint8_t>(b);
  return order;
}

// `bytes` written with the mapping, as UTF-8 (the form of encoder.json keys and vocab.bpe).
inline std::string gpt2_mapped_string(std::string_view bytes) {
  static const std::array<uint16_t, 256> table = gpt2_byte_to_unicode();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const uint16_t cp = table[static_cast<unsigned char>(c)];
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else {  // all mapped code points are below U+0800: two bytes
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

}  // namespace kervan
