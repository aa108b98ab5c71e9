#include "datasets/tokenizer/unicode_classes.h"

#include <cstring>
#include <map>
#include <string>

namespace kervan {

namespace {
struct Range {
  uint32_t first, last;
  CharClass cls;
};
constexpr CharClass kLetter = CharClass::kLetter, kNumber = CharClass::kNumber, kSpace = CharClass::kSpace;
constexpr Range kRanges[] = {
#include "datasets/tokenizer/unicode_classes.inc"
};
}  // namespace

const CharClasses& CharClasses::get() {
  static const CharClasses table;
  return table;
}

CharClasses::CharClasses() {
  std::string flat(0x110000, static_cast<char>(CharClass::kOther));
  for (const Range& r : kRanges)
    for (uint32_t cp = r.first; cp <= r.last; ++cp) flat[cp] = static_cast<char>(r.cls);
  // Deduplicate the 4352 blocks: most of the code space is unassigned or one class throughout.
  std::map<std::string, uint16_t> seen;
  for (uint32_t b = 0; b < 0x1100; ++b) {
    auto [it, fresh] = seen.emplace(flat.substr(b * 256, 256), static_cast<uint16_t>(seen.size()));
    if (fresh) blocks_.insert(blocks_.end(), it->first.begin(), it->first.end());
    index_[b] = it->second;
  }
}

}  // namespace kervan
