#include "datasets/tokenizer/bpe_trainer.h"

#include <algorithm>
#include <unordered_map>

#include "core/error.h"

namespace kervan {

namespace {

uint64_t pair_key(uint32_t left, uint32_t right) {
  return (uint64_t{left} << 32) | right;
}

class Trainer {
 public:
  explicit Trainer(const std::vector<WordCount>& words) {
    tokens_.reserve(1 << 16);
    for (int b = 0; b < 256; ++b) {
      tokens_.emplace_back(1, static_cast<char>(b));
      token_ids_.emplace(tokens_.back(), b);
    }
    // Pieces of one byte hold no pair and are left out.
    for (const WordCount& w : words) {
      if (w.bytes.size() < 2 || w.count == 0) continue;
      start_.push_back(static_cast<uint64_t>(syms_.size()));
      len_.push_back(static_cast<uint32_t>(w.bytes.size()));
      count_.push_back(static_cast<int64_t>(w.count));
      for (const char c : w.bytes) syms_.push_back(static_cast<unsigned char>(c));
    }
    for (uint32_t w = 0; w < len_.size(); ++w) {
      const uint32_t* s = &syms_[start_[w]];
      for (uint32_t i = 0; i + 1 < len_[w]; ++i) {
        Pair& p = pairs_[pair_at(s[i], s[i + 1])];
        p.count += count_[w];
        if (p.words.empty() || p.words.back() != w) p.words.push_back(w);
      }
    }
    for (uint32_t i = 0; i < pairs_.size(); ++i) heap_.push_back({pairs_[i].count, i});
    std::make_heap(heap_.begin(), heap_.end(), lower());
  }

  BpeTrainResult run(size_t max_tokens, uint64_t min_frequency,
                     const std::function<void(const BpeTrainResult&)>& progress) {
    BpeTrainResult result;
    const int64_t min_count = static_cast<int64_t>(std::max<uint64_t>(min_frequency, 1));
    while (result.tokens < max_tokens) {
      const int64_t best = pop_best();
      if (best < 0 || pairs_[best].count < min_count) {
        result.exhausted = true;
        break;
      }
      const Pair& p = pairs_[best];
      result.merges.push_back({tokens_[p.left], tokens_[p.right], static_cast<uint64_t>(p.count)});
      std::string joined = tokens_[p.left] + tokens_[p.right];
      auto [it, added] = token_ids_.emplace(std::move(joined), static_cast<uint32_t>(tokens_.size()));
      if (added) tokens_.push_back(it->first);
      result.tokens = tokens_.size();
      merge(static_cast<uint32_t>(best), it->second);
      if (progress && result.merges.size() % 1000 == 0) progress(result);
    }
    return result;
  }

 private:
  struct Pair {
    uint32_t left, right;
    int64_t count = 0;
    std::vector<uint32_t> words;  // pieces that hold (or once held) the pair, ascending
  };
  struct Entry {
    int64_t count;  // the pair's count when pushed; stale once it differs
    uint32_t pair;
  };
  // Heap order: a below b when a's count is lower, or equal and a's bytes are larger.
  bool below(const Entry& a, const Entry& b) const {
    if (a.count != b.count) return a.count < b.count;
    const Pair& pa = pairs_[a.pair];
    const Pair& pb = pairs_[b.pair];
    if (const int c = tokens_[pa.left].compare(tokens_[pb.left])) return c > 0;
    return tokens_[pa.right].compare(tokens_[pb.right]) > 0;
  }
  struct Below {
    const Trainer* t;
    bool operator()(const Entry& a, const Entry& b) const { return t->below(a, b); }
  };
  Below lower() const { return {this}; }

  uint32_t pair_at(uint32_t left, uint32_t right) {
    auto [it, added] = pair_ids_.emplace(pair_key(left, right), static_cast<uint32_t>(pairs_.size()));
    if (added) pairs_.push_back({left, right, 0, {}});
    return it->second;
  }

  // The pair to merge next, or -1. Entries whose count is stale are pushed again with the current
  // count (counts of old pairs only fall, so a stale entry is never below the truth).
  int64_t pop_best() {
    while (!heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), lower());
      const Entry e = heap_.back();
      heap_.pop_back();
      const int64_t now = pairs_[e.pair].count;
      if (now == e.count) return e.pair;
      if (now > 0) {
        heap_.push_back({now, e.pair});
        std::push_heap(heap_.begin(), heap_.end(), lower());
      }
    }
    return -1;
  }

  // Replaces pair `p` by token `joined` in every piece that holds it; updates the counts of the
  // pairs those pieces hold, before and after.
  void merge(uint32_t p, uint32_t joined) {
    const uint32_t left = pairs_[p].left, right = pairs_[p].right;
    std::vector<uint32_t> words = std::move(pairs_[p].words);
    pairs_[p].words = {};
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    deltas_.clear();
    fresh_.clear();
    for (const uint32_t w : words) {
      uint32_t* s = &syms_[start_[w]];
      const uint32_t n = len_[w];
      bool holds = false;
      for (uint32_t i = 0; i + 1 < n && !holds; ++i) holds = s[i] == left && s[i + 1] == right;
      if (!holds) continue;  // an earlier merge took the pair out of this piece
      const int64_t c = count_[w];
      for (uint32_t i = 0; i + 1 < n; ++i) deltas_.push_back({pair_key(s[i], s[i + 1]), -c});
      uint32_t m = 0;
      for (uint32_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == left && s[i + 1] == right) {
          s[m++] = joined;
          i += 2;
        } else {
          s[m++] = s[i++];
        }
      }
      len_[w] = m;
      for (uint32_t i = 0; i + 1 < m; ++i) {
        const uint64_t k = pair_key(s[i], s[i + 1]);
        deltas_.push_back({k, c});
        if (s[i] == joined || s[i + 1] == joined) fresh_.push_back({k, w});
      }
    }
    // Net change per pair; pairs that grew get a heap entry with their new count.
    std::sort(deltas_.begin(), deltas_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (size_t i = 0; i < deltas_.size();) {
      const uint64_t k = deltas_[i].first;
      int64_t sum = 0;
      for (; i < deltas_.size() && deltas_[i].first == k; ++i) sum += deltas_[i].second;
      if (sum == 0) continue;
      const uint32_t q = pair_at(static_cast<uint32_t>(k >> 32), static_cast<uint32_t>(k));
      pairs_[q].count += sum;
      KERVAN_CHECK(pairs_[q].count >= 0, "BPE pair count below zero");
      if (sum > 0) {
        heap_.push_back({pairs_[q].count, q});
        std::push_heap(heap_.begin(), heap_.end(), lower());
      }
    }
    KERVAN_CHECK(pairs_[p].count == 0, "merged pair still counted");
    for (const auto& [k, w] : fresh_) {
      std::vector<uint32_t>& ws =
          pairs_[pair_at(static_cast<uint32_t>(k >> 32), static_cast<uint32_t>(k))].words;
      if (ws.empty() || ws.back() != w) ws.push_back(w);
    }
  }

  std::vector<std::string> tokens_;  // id -> bytes (ids 0-255: the bytes)
  std::unordered_map<std::string, uint32_t> token_ids_;
  std::vector<uint32_t> syms_;  // every piece as token ids, piece w at start_[w], len_[w] long
  std::vector<uint64_t> start_;
  std::vector<uint32_t> len_;
  std::vector<int64_t> count_;  // piece frequency
  std::unordered_map<uint64_t, uint32_t> pair_ids_;
  std::vector<Pair> pairs_;
  std::vector<Entry> heap_;
  std::vector<std::pair<uint64_t, int64_t>> deltas_;  // scratch of merge()
  std::vector<std::pair<uint64_t, uint32_t>> fresh_;
};

}  // namespace

BpeTrainResult learn_bpe(const std::vector<WordCount>& words, size_t max_tokens, uint64_t min_frequency,
                         const std::function<void(const BpeTrainResult&)>& progress) {
  Trainer trainer(words);
  return trainer.run(max_tokens, min_frequency, progress);
}

}  // namespace kervan
