#include "datasets/tokenizer/bpe_word_counts.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "core/error.h"
#include "datasets/tokenizer/gpt2_pretokenizer.h"
#include "datasets/tokenizer/utf8.h"

namespace kervan {

namespace {

constexpr std::string_view kEndOfText = "<|endoftext|>";
// FlatStringMap keeps its keys at 32-bit offsets.
constexpr size_t kMaxTableBytes = (size_t{1} << 32) - (size_t{1} << 20);

// The last position in text where a piece always begins (0: none), so that a chunk ending there
// is pre-tokenized exactly as in the whole text. It leaves room for a whole <|endoftext|> after
// it, so that the caller can tell whether one starts there.
size_t last_safe_split(std::string_view text, const CharClasses& classes) {
  if (text.size() < kEndOfText.size() + 2) return 0;
  for (size_t nl = text.rfind('\n', text.size() - kEndOfText.size() - 2); nl != std::string_view::npos;
       nl = nl ? text.rfind('\n', nl - 1) : std::string_view::npos)
    if (is_gpt2_safe_split(text, nl + 1, classes)) return nl + 1;
  return 0;
}

}  // namespace

BpeWordCounter::BpeWordCounter(int threads, size_t chunk_bytes)
    : threads_(std::max(1, threads)), chunk_bytes_(std::max<size_t>(chunk_bytes, 1)), tables_(threads_) {}

void BpeWordCounter::add_text(std::string_view text) {
  bytes_ += text.size();
  count_chunk(text, text.size());
}

void BpeWordCounter::add_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw_io_error(path, "cannot open input file", errno);
  const CharClasses& classes = CharClasses::get();
  std::string buf;  // the text not counted yet
  for (bool eof = false; !eof;) {
    const size_t old = buf.size();
    buf.resize(old + chunk_bytes_);
    const size_t n = std::fread(buf.data() + old, 1, chunk_bytes_, f.get());
    buf.resize(old + n);
    if (std::ferror(f.get())) throw_io_error(path, "read failed", errno ? errno : EIO);
    bytes_ += n;
    eof = n < chunk_bytes_;
    // Count up to the last safe split and keep the rest for the next chunk; with none in sight
    // (no newline), read on.
    const size_t cut = eof ? buf.size() : last_safe_split(buf, classes);
    if (cut == 0) continue;
    // One byte past the cut lets the pre-tokenizer see that the text goes on (whitespace at the
    // end of a text is a piece of its own), unless an <|endoftext|> ends the segment there.
    const bool lookahead = cut < buf.size() && !std::string_view(buf).substr(cut).starts_with(kEndOfText);
    count_chunk(std::string_view(buf).substr(0, cut + (lookahead ? 1 : 0)), cut);
    buf.erase(0, cut);
  }
}

void BpeWordCounter::count_chunk(std::string_view text, size_t end) {
  std::string repaired;
  if (!is_valid_utf8(text.substr(0, end))) {
    // The cut and the lookahead byte are ASCII, so repairing the chunk alone equals repairing
    // the whole text.
    const std::string_view rest = text.substr(end);
    repaired = replace_invalid_utf8(text.substr(0, end));
    end = repaired.size();
    repaired += rest;
    text = repaired;
  }

  // Segments between <|endoftext|>s, cut further where a piece always begins so that the threads
  // share the work.
  const CharClasses& classes = CharClasses::get();
  const size_t target = std::max<size_t>(size_t{1} << 20, end / (size_t(threads_) * 4));
  std::vector<Range> ranges;
  auto add_segment = [&](std::string_view seg, size_t seg_end) {
    size_t b = 0;
    while (seg_end - b > 2 * target) {
      size_t cut = b + target;
      while (cut < seg_end && !is_gpt2_safe_split(seg, cut, classes)) {
        const void* nl = std::memchr(seg.data() + cut, '\n', seg_end - cut);
        cut = nl ? static_cast<size_t>(static_cast<const char*>(nl) - seg.data()) + 1 : seg_end;
      }
      if (cut >= seg_end) break;
      ranges.push_back({seg, b, cut});
      b = cut;
    }
    if (b < seg_end) ranges.push_back({seg, b, seg_end});
  };
  size_t s = 0;
  for (size_t at; (at = text.find(kEndOfText, s)) != std::string_view::npos && at + kEndOfText.size() <= end;
       s = at + kEndOfText.size())
    add_segment(text.substr(s, at - s), at - s);
  if (s < end) add_segment(text.substr(s), end - s);

  std::atomic<size_t> next{0};
  std::atomic<uint64_t> pieces{0};
  std::atomic<bool> full{false};
  auto work = [&](Table& t) {
    uint64_t n = 0;
    for (size_t i; (i = next.fetch_add(1)) < ranges.size() && !full;) {
      const Range& r = ranges[i];
      for (size_t p = r.begin; p < r.end; ++n) {
        const size_t e = gpt2_piece_end(r.text, p, classes);
        const std::string_view piece = r.text.substr(p, e - p);
        const uint64_t h = FlatStringMap::hash(piece);
        if (const uint32_t* at = t.index.find(piece, h)) {
          ++t.counts[*at];
        } else {
          if (t.index.arena_bytes() + piece.size() > kMaxTableBytes) {
            full = true;
            break;
          }
          t.index.insert(piece, h, static_cast<uint32_t>(t.counts.size()));
          t.counts.push_back(1);
        }
        p = e;
      }
    }
    pieces += n;
  };
  const size_t n_threads = std::min<size_t>(tables_.size(), ranges.size());
  std::vector<std::thread> pool;
  for (size_t i = 1; i < n_threads; ++i) pool.emplace_back(work, std::ref(tables_[i]));
  if (n_threads > 0) work(tables_[0]);
  for (auto& th : pool) th.join();
  pieces_ += pieces;
  if (full)
    throw UserError("the corpus has more than " + std::to_string(kMaxTableBytes >> 30) +
                    " GiB of distinct pieces per thread: train on a sample of it");
}

std::vector<WordCount> BpeWordCounter::sorted() const {
  // Sum the per-thread tables; sorting makes the order independent of them.
  FlatStringMap index(tables_[0].counts.size());
  std::vector<WordCount> words;
  for (const Table& t : tables_)
    t.index.for_each([&](std::string_view piece, uint32_t at) {
      const uint64_t h = FlatStringMap::hash(piece);
      if (const uint32_t* w = index.find(piece, h)) {
        words[*w].count += t.counts[at];
      } else {
        index.insert(piece, h, static_cast<uint32_t>(words.size()));
        words.push_back({std::string(piece), t.counts[at]});
      }
    });
  std::sort(words.begin(), words.end(),
            [](const WordCount& a, const WordCount& b) { return a.bytes < b.bytes; });
  return words;
}

}  // namespace kervan
