#include "datasets/tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "datasets/tokenizer/gpt2_bytes.h"
#include "datasets/tokenizer/gpt2_pretokenizer.h"
#include "datasets/tokenizer/utf8.h"

namespace kervan {

namespace {

constexpr uint32_t kNoRank = std::numeric_limits<uint32_t>::max();
// Pieces longer than this merge with a heap (n log n) instead of tiktoken's quadratic scan.
constexpr size_t kLongPiece = 64;
// The per-call cache of BPE results is dropped when it grows past this many pieces.
constexpr size_t kMaxCachedPieces = size_t{1} << 18;
// Longer pieces (rare, seldom repeated) are not cached, which bounds the cache's memory.
constexpr size_t kMaxCachedPieceBytes = 256;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path + ": cannot open tokenizer file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw UserError(path + ": read failed");
  return ss.str();
}

// GPT-2's byte-to-unicode mapping (gpt2_bytes.h), inverted: code point -> byte, -1: no byte.
std::array<int16_t, 0x144> unicode_to_byte() {
  std::array<int16_t, 0x144> table;
  table.fill(-1);
  const std::array<uint16_t, 256> to_unicode = gpt2_byte_to_unicode();
  for (int b = 0; b < 256; ++b) table[to_unicode[b]] = static_cast<int16_t>(b);
  return table;
}

// The bytes a token string of encoder.json / vocab.bpe stands for; false when it holds a
// character outside the mapping (or is not UTF-8).
bool token_bytes(std::string_view s, const std::array<int16_t, 0x144>& map, std::string* out) {
  out->clear();
  if (!is_valid_utf8(s)) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    i += decode_utf8(p + i, &cp);
    if (cp >= map.size() || map[cp] < 0) return false;
    out->push_back(static_cast<char>(map[cp]));
  }
  return true;
}

// Collects the entries of a flat JSON object {"string": non-negative integer, ...}; anything else
// stops the parse with a message naming the file.
struct EncoderJsonReader : nlohmann::json_sax<nlohmann::json> {
  explicit EncoderJsonReader(const std::string& path) : path(path) {}
  std::string path, key_;
  int depth = 0;
  std::vector<std::pair<std::string, uint32_t>> entries;

  [[noreturn]] void bad(const std::string& what) {
    throw UserError(path + ": " + what + " (expected a JSON object mapping token strings to ids)");
  }
  bool value(int64_t v) {
    if (depth != 1) bad("unexpected number");
    if (v < 0 || v >= (int64_t{1} << 31)) bad("token \"" + key_ + "\" has id " + std::to_string(v));
    entries.emplace_back(std::move(key_), static_cast<uint32_t>(v));
    return true;
  }
  bool null() override { bad("unexpected null"); }
  bool boolean(bool) override { bad("unexpected true/false"); }
  bool number_integer(number_integer_t v) override { return value(v); }
  bool number_unsigned(number_unsigned_t v) override {
    return value(v >= (uint64_t{1} << 31) ? int64_t{-1} : static_cast<int64_t>(v));
  }
  bool number_float(number_float_t, const string_t& s) override { bad("token \"" + key_ + "\" has id " + s); }
  bool string(string_t&) override { bad("token \"" + key_ + "\" has a string as id"); }
  bool binary(binary_t&) override { bad("unexpected binary value"); }
  bool start_object(std::size_t n) override {
    if (++depth != 1) bad("nested object");
    if (n != std::size_t(-1)) entries.reserve(n);
    return true;
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override {
    --depth;
    return true;
  }
  bool start_array(std::size_t) override { bad("unexpected array"); }
  bool end_array() override { return true; }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::json::exception& e) override {
    throw UserError(path + ": not valid JSON at byte " + std::to_string(pos) + " (" + e.what() + ")");
  }
};

}  // namespace

BpeTokenizer BpeTokenizer::from_files(const std::string& encoder_json, const std::string& vocab_bpe) {
  const auto map = unicode_to_byte();
  BpeTokenizer t;

  // encoder.json: {"token string": id, ...}, read with nlohmann's SAX parser (no DOM: loading
  // GPT-2's 50k entries took twice as long with one).
  EncoderJsonReader reader(encoder_json);
  const std::string json_text = read_file(encoder_json);
  try {
    nlohmann::json::sax_parse(json_text, &reader);
  } catch (const nlohmann::json::exception& e) {
    throw UserError(encoder_json + ": not valid JSON (" + e.what() + ")");
  }
  if (reader.entries.empty())
    throw UserError(encoder_json + ": expected a JSON object mapping token strings to ids");
  FlatStringMap bytes_to_id(reader.entries.size());
  t.ranks_ = FlatStringMap(reader.entries.size());
  std::string bytes;
  // Ids number the tokens from 0, with room for a few gaps; an id far beyond the count (2^31 for
  // 50,000 tokens) is a damaged file, and would size the id tables by it.
  const uint64_t id_limit = 4 * static_cast<uint64_t>(reader.entries.size()) + 65536;
  for (auto& [key, id] : reader.entries) {
    if (id >= id_limit)
      throw UserError(encoder_json + ": id " + std::to_string(id) + " of token '" + key +
                      "' is far beyond the " + std::to_string(reader.entries.size()) +
                      " tokens of the file (ids number the tokens from 0)");
    if (id >= t.id_bytes_.size()) {
      t.id_bytes_.resize(id + 1);
      t.id_known_.resize(id + 1, 0);
    }
    if (t.id_known_[id]) throw UserError(encoder_json + ": id " + std::to_string(id) + " is used twice");
    t.id_known_[id] = 1;
    if (token_bytes(key, map, &bytes)) {
      t.id_bytes_[id] = bytes;
      bytes_to_id.insert(bytes, id);
    } else {
      t.id_bytes_[id] = std::move(key);
    }
  }

  // Single bytes: ranks 0-255.
  std::vector<uint8_t> is_mergeable(t.id_bytes_.size(), 0);
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    const uint32_t* id = bytes_to_id.find(one);
    if (!id)
      throw UserError(encoder_json + ": has no token for byte " + std::to_string(b) +
                      " (not a byte-level BPE vocabulary)");
    t.ranks_.insert(one, static_cast<uint32_t>(b));
    t.rank_to_id_.push_back(*id);
    is_mergeable[*id] = 1;
  }

  // vocab.bpe: "#version: ..." then one merge "left right" per line, in rank order.
  const std::string merges = read_file(vocab_bpe);
  std::string left, right;
  size_t line_no = 0;
  for (size_t pos = 0; pos < merges.size();) {
    size_t eol = merges.find('\n', pos);
    if (eol == std::string::npos) eol = merges.size();
    std::string_view line(merges.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    auto where = [&] { return vocab_bpe + ":" + std::to_string(line_no) + ": "; };
    const size_t sp = line.find(' ');
    if (sp == 0 || sp == std::string_view::npos || sp + 1 == line.size() ||
        line.find(' ', sp + 1) != std::string_view::npos)
      throw UserError(where() + "expected a merge \"LEFT RIGHT\", got \"" + std::string(line) + "\"");
    if (!token_bytes(line.substr(0, sp), map, &left) || !token_bytes(line.substr(sp + 1), map, &right))
      throw UserError(where() + "holds a character outside GPT-2's byte mapping");
    if (!t.ranks_.find(left) || !t.ranks_.find(right))
      throw UserError(where() + "merges a token that no earlier merge made (\"" + std::string(line) + "\")");
    left += right;
    const std::string& merged = left;
    const uint32_t* id = bytes_to_id.find(merged);
    if (!id)
      throw UserError(where() + "the merge of \"" + std::string(line) + "\" is not a token of " +
                      encoder_json);
    if (t.ranks_.insert(merged, static_cast<uint32_t>(t.rank_to_id_.size()))) {
      t.rank_to_id_.push_back(*id);
      is_mergeable[*id] = 1;
    }
  }

  // Everything else in encoder.json is a special token, matched literally (only when allowed).
  for (size_t id = 0; id < t.id_bytes_.size(); ++id)
    if (t.id_known_[id] && !is_mergeable[id] && !t.id_bytes_[id].empty())
      t.specials_.push_back({t.id_bytes_[id], static_cast<uint32_t>(id)});
  // Longer first, so that of two specials at one position the longer wins.
  std::stable_sort(t.specials_.begin(), t.specials_.end(),
                   [](const Special& a, const Special& b) { return a.text.size() > b.text.size(); });
  return t;
}

int64_t BpeTokenizer::special_id(std::string_view text) const {
  for (const Special& s : specials_)
    if (s.text == text) return s.id;
  return -1;
}

// Per-thread state of one encode call.
struct BpeTokenizer::Scratch {
  FlatStringMap cache{4096};  // piece -> offset in cached (count, then ids)
  std::vector<uint32_t> cached;
  std::vector<uint32_t> starts, ranks;        // short-piece BPE
  std::vector<uint32_t> next, prev, version;  // long-piece BPE
};

BpeTokenizer::Cache::Cache() : scratch_(std::make_unique<Scratch>()) {}
BpeTokenizer::Cache::~Cache() = default;
BpeTokenizer::Cache::Cache(Cache&&) noexcept = default;
BpeTokenizer::Cache& BpeTokenizer::Cache::operator=(Cache&&) noexcept = default;

uint32_t BpeTokenizer::rank_of(std::string_view bytes) const {
  const uint32_t* r = ranks_.find(bytes);
  return r ? *r : kNoRank;
}

void BpeTokenizer::bpe(std::string_view piece, Scratch& s, std::vector<uint32_t>& out) const {
  if (piece.size() > kLongPiece) return bpe_long(piece, s, out);
  // Symbols start at starts[k] (and end where the next starts); ranks[k] is the rank of symbol k
  // joined with symbol k+1. Merge the lowest (leftmost on ties) until no pair is a token.
  const auto n = static_cast<uint32_t>(piece.size());
  s.starts.resize(n + 1);
  s.ranks.resize(n);
  for (uint32_t k = 0; k <= n; ++k) s.starts[k] = k;
  auto pair_rank = [&](size_t k) {  // symbol k with k+1; needs k + 2 <= symbols
    return k + 2 < s.starts.size() ? rank_of(piece.substr(s.starts[k], s.starts[k + 2] - s.starts[k]))
                                   : kNoRank;
  };
  for (uint32_t k = 0; k < n; ++k) s.ranks[k] = pair_rank(k);
  for (;;) {
    const size_t symbols = s.starts.size() - 1;
    uint32_t best = kNoRank;
    size_t at = 0;
    for (size_t k = 0; k + 1 < symbols; ++k)
      if (s.ranks[k] < best) best = s.ranks[k], at = k;
    if (best == kNoRank) break;
    s.starts.erase(s.starts.begin() + at + 1);
    s.ranks.erase(s.ranks.begin() + at + 1);
    s.ranks[at] = pair_rank(at);
    if (at > 0) s.ranks[at - 1] = pair_rank(at - 1);
  }
  for (size_t k = 0; k + 1 < s.starts.size(); ++k)
    out.push_back(rank_to_id_[rank_of(piece.substr(s.starts[k], s.starts[k + 1] - s.starts[k]))]);
}

void BpeTokenizer::bpe_long(std::string_view piece, Scratch& s, std::vector<uint32_t>& out) const {
  // The same merges as bpe(), in the same order, with a heap of candidate pairs ordered by (rank,
  // position). Symbol k starts at byte k and ends at next[k]; a pair is stale once either symbol
  // changed (version) or disappeared.
  const auto n = static_cast<uint32_t>(piece.size());
  s.next.resize(n);
  s.prev.resize(n);
  s.version.assign(n, 0);
  for (uint32_t k = 0; k < n; ++k) s.next[k] = k + 1, s.prev[k] = k - 1;  // prev of 0 wraps: unused
  struct Cand {
    uint32_t rank, left, right, vleft, vright;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<>> heap;
  auto push = [&](uint32_t left) {
    const uint32_t right = s.next[left];
    if (right >= n) return;
    const uint32_t end = s.next[right];
    const uint32_t r = rank_of(piece.substr(left, end - left));
    if (r != kNoRank) heap.push({r, left, right, s.version[left], s.version[right]});
  };
  for (uint32_t k = 0; k + 1 < n; ++k) push(k);
  std::vector<uint8_t> alive(n, 1);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    if (!alive[c.left] || !alive[c.right] || s.next[c.left] != c.right || s.version[c.left] != c.vleft ||
        s.version[c.right] != c.vright)
      continue;
    alive[c.right] = 0;
    s.next[c.left] = s.next[c.right];
    if (s.next[c.left] < n) s.prev[s.next[c.left]] = c.left;
    ++s.version[c.left];
    push(c.left);
    if (c.left > 0) push(s.prev[c.left]);
  }
  for (uint32_t k = 0; k < n; k = s.next[k])
    out.push_back(rank_to_id_[rank_of(piece.substr(k, s.next[k] - k))]);
}

void BpeTokenizer::encode_piece(std::string_view piece, Scratch& s, std::vector<uint32_t>& out) const {
  const uint64_t h = FlatStringMap::hash(piece);
  if (const uint32_t* r = ranks_.find(piece, h)) {  // most pieces are one token
    out.push_back(rank_to_id_[*r]);
    return;
  }
  if (const uint32_t* at = s.cache.find(piece, h)) {
    const uint32_t* ids = s.cached.data() + *at;
    out.insert(out.end(), ids + 1, ids + 1 + ids[0]);
    return;
  }
  const size_t first = out.size();
  bpe(piece, s, out);
  if (piece.size() > kMaxCachedPieceBytes) return;
  if (s.cache.size() >= kMaxCachedPieces) {
    s.cache.clear();
    s.cached.clear();
  }
  s.cache.insert(piece, h, static_cast<uint32_t>(s.cached.size()));
  s.cached.push_back(static_cast<uint32_t>(out.size() - first));
  s.cached.insert(s.cached.end(), out.begin() + first, out.end());
}

void BpeTokenizer::encode_segment(std::string_view seg, size_t begin, size_t end, Scratch& s,
                                  std::vector<uint32_t>& out) const {
  const CharClasses& classes = CharClasses::get();
  for (size_t p = begin; p < end;) {
    const size_t e = gpt2_piece_end(seg, p, classes);
    encode_piece(seg.substr(p, e - p), s, out);
    p = e;
  }
}

std::vector<uint32_t> BpeTokenizer::encode(std::string_view text, bool allow_special, int threads) const {
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = replace_invalid_utf8(text);
    text = repaired;
  }
  // Work items: [begin, end) of a segment (text between allowed specials), then a special or -1.
  struct Part {
    std::string_view seg;
    size_t begin, end;
    int64_t special_after;
  };
  std::vector<Part> parts;
  size_t pos = 0;
  while (allow_special && !specials_.empty()) {
    size_t best = std::string_view::npos;
    const Special* hit = nullptr;
    for (const Special& sp : specials_) {
      const size_t at = text.find(sp.text, pos);
      if (at < best) best = at, hit = &sp;
    }
    if (!hit) break;
    const std::string_view seg = text.substr(pos, best - pos);
    parts.push_back({seg, 0, seg.size(), hit->id});
    pos = best + hit->text.size();
  }
  parts.push_back({text.substr(pos), 0, text.size() - pos, -1});

  threads = std::max(1, threads);
  std::vector<uint32_t> out;
  out.reserve(text.size() / 4 + 16);
  if (threads == 1) {
    Scratch s;
    for (const Part& p : parts) {
      encode_segment(p.seg, p.begin, p.end, s, out);
      if (p.special_after >= 0) out.push_back(static_cast<uint32_t>(p.special_after));
    }
    return out;
  }

  // Cut long segments where a piece always begins (after "\n" + non-space), so every chunk
  // encodes to exactly the tokens it would get in the whole text.
  const size_t target = std::max<size_t>(size_t{1} << 18, text.size() / (size_t(threads) * 8));
  const CharClasses& classes = CharClasses::get();
  std::vector<Part> chunks;
  for (const Part& p : parts) {
    size_t b = p.begin;
    while (p.end - b > 2 * target) {
      size_t cut = b + target;
      while (cut < p.end && !is_gpt2_safe_split(p.seg, cut, classes)) {
        const void* nl = std::memchr(p.seg.data() + cut, '\n', p.end - cut);
        cut = nl ? static_cast<size_t>(static_cast<const char*>(nl) - p.seg.data()) + 1 : p.end;
      }
      if (cut >= p.end) break;
      chunks.push_back({p.seg, b, cut, -1});
      b = cut;
    }
    chunks.push_back({p.seg, b, p.end, p.special_after});
  }
  std::vector<std::vector<uint32_t>> results(chunks.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    Scratch s;
    for (size_t i; (i = next.fetch_add(1)) < chunks.size();) {
      const Part& c = chunks[i];
      results[i].reserve((c.end - c.begin) / 4 + 16);
      encode_segment(c.seg, c.begin, c.end, s, results[i]);
      if (c.special_after >= 0) results[i].push_back(static_cast<uint32_t>(c.special_after));
    }
  };
  std::vector<std::thread> pool;
  const int n_threads = static_cast<int>(std::min<size_t>(threads, chunks.size()));
  for (int i = 1; i < n_threads; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  for (const auto& r : results) out.insert(out.end(), r.begin(), r.end());
  return out;
}

void BpeTokenizer::encode_ordinary(std::string_view text, Cache& cache, std::vector<uint32_t>& out) const {
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = replace_invalid_utf8(text);
    text = repaired;
  }
  encode_segment(text, 0, text.size(), *cache.scratch_, out);
}

std::string BpeTokenizer::decode(std::span<const uint32_t> ids) const {
  std::string out;
  for (const uint32_t id : ids) {
    if (id >= id_bytes_.size() || !id_known_[id])
      throw UserError("token id " + std::to_string(id) + " is not in the vocabulary (" +
                      std::to_string(id_bytes_.size()) + " tokens)");
    out += id_bytes_[id];
  }
  return out;
}

}  // namespace kervan
