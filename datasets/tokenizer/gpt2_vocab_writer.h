#pragma once
#include <string>
#include <vector>

#include "datasets/tokenizer/bpe_trainer.h"

namespace kervan {

// Writes learned merges as GPT-2's two files, in GPT-2's exact layout, into folder `dir`:
//  encoder.json  {"token": id, ...} on one line, non-ASCII as \uXXXX (as Python's json.dump);
//                ids 0-255: the single bytes in GPT-2's order (gpt2_bytes.h), then one id per
//                merge in merge order (a merge whose bytes an earlier merge already made adds
//                none), then <|endoftext|> as the last id;
//  vocab.bpe     "#version: 0.2", then one merge "LEFT RIGHT" per line in merge order.
// Tokens are written with GPT-2's byte-to-unicode mapping. Both files are written into a hidden
// folder beside `dir` that is then renamed to `dir`, so `dir` never holds one file without the
// other or a half-written one. `dir` must not exist or be empty (UserError otherwise).
void write_gpt2_vocab(const std::string& dir, const std::vector<BpeMerge>& merges);

// UserError unless `dir` can receive a vocabulary (absent, or an empty folder): checked before
// training so that a long run does not end in that error.
void check_vocab_out_dir(const std::string& dir);

}  // namespace kervan
