#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kervan {

// The Unicode classes GPT-2's pre-tokenizer pattern distinguishes: \p{L}, \p{N}, \s (Unicode
// White_Space) and everything else. The data (unicode_classes.inc) is generated from tiktoken so
// that kervan splits text exactly where tiktoken does, Unicode version included.
enum class CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };

// A two-level lookup table (256-code-point blocks, identical blocks shared): one or two memory
// reads per code point instead of a binary search over ~800 ranges.
class CharClasses {
 public:
  static const CharClasses& get();  // built once, thread-safe

  CharClass of(uint32_t cp) const {
    if (cp >= 0x110000) return CharClass::kOther;
    return static_cast<CharClass>(blocks_[(size_t{index_[cp >> 8]} << 8) | (cp & 0xFF)]);
  }

 private:
  CharClasses();
  uint16_t index_[0x1100];
  std::vector<uint8_t> blocks_;
};

}  // namespace kervan
