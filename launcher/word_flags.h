#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kervan {

// Whole-word masking's view of a tokenizer: WordPieceFlag (datasets/loader/masked_lm.h) of each of
// its `vocab` ids, from the bytes of the token ("bytes": the byte itself; "gpt2" or a folder: the
// BPE token). Ids the tokenizer lacks (and its end-of-text) get no flags: they are words of their own.
std::vector<uint8_t> tokenizer_word_flags(const std::string& tokenizer, int64_t vocab);

}  // namespace kervan
