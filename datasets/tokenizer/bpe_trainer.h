#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "datasets/tokenizer/bpe_word_counts.h"

namespace kervan {

struct BpeMerge {
  std::string left, right;  // the bytes of the two tokens joined
  uint64_t count;           // how often the pair occurred when it was chosen
};

struct BpeTrainResult {
  std::vector<BpeMerge> merges;  // in the order learned = merge rank
  size_t tokens = 256;           // 256 bytes + the distinct tokens the merges made
  bool exhausted = false;        // stopped short: no pair left that occurs min_frequency times
};

// Learns byte-level BPE merges from piece counts until the vocabulary holds `max_tokens` tokens
// (the 256 bytes included; special tokens are not counted here). Each step merges the most
// frequent adjacent pair of tokens, counted over all pieces with their frequencies; ties go to
// the pair whose (left bytes, right bytes) is smallest, comparing bytes as unsigned. A merge
// joins every occurrence in a piece, left to right. It stops early when the most frequent pair
// occurs fewer than `min_frequency` times (or no pair is left). Should two merges make the same
// bytes (a+bc, ab+c), both are kept and the token counts once, as in Hugging Face tokenizers.
//
// The merges are found incrementally (as Hugging Face tokenizers and SentencePiece do): pair
// counts, the pieces each pair occurs in, and a max-heap with lazy invalidation; a merge updates
// only the pieces that hold the pair. `progress`, when set, is called every 1000 merges.
BpeTrainResult learn_bpe(const std::vector<WordCount>& words, size_t max_tokens, uint64_t min_frequency = 2,
                         const std::function<void(const BpeTrainResult&)>& progress = {});

}  // namespace kervan
