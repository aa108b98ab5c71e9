// BPE training (`kervan tokenizer train`): the first merges of a hand-checked corpus, the merges
// against a naive recount-everything reference, piece counts against a naive count whatever the
// threads and chunk size, the written files (GPT-2's exact layout), and train -> load -> encode.
#include <gtest/gtest.h>

#include <cstdlib>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

#include "core/error.h"
#include "datasets/tokenizer/bpe_tokenizer.h"
#include "datasets/tokenizer/bpe_trainer.h"
#include "datasets/tokenizer/bpe_word_counts.h"
#include "datasets/tokenizer/gpt2_pretokenizer.h"
#include "datasets/tokenizer/gpt2_vocab_writer.h"
#include "datasets/tokenizer/tokenizer_files.h"
#include "datasets/tokenizer/utf8.h"
#include "temp_dir_test.h"

namespace kervan {
namespace {

namespace fs = std::filesystem;

using Merge = std::tuple<std::string, std::string, uint64_t>;

std::vector<Merge> as_tuples(const std::vector<BpeMerge>& merges) {
  std::vector<Merge> out;
  for (const BpeMerge& m : merges) out.emplace_back(m.left, m.right, m.count);
  return out;
}

// Piece counts as the definition says: repair UTF-8, cut at <|endoftext|>, pre-tokenize each part.
std::map<std::string, uint64_t> reference_counts(const std::string& raw) {
  const std::string text = replace_invalid_utf8(raw);
  const std::string eot = "<|endoftext|>";
  std::map<std::string, uint64_t> counts;
  for (size_t s = 0;;) {
    const size_t at = text.find(eot, s);
    const std::string seg = text.substr(s, at == std::string::npos ? std::string::npos : at - s);
    for (std::string_view piece : gpt2_pretokenize(seg)) ++counts[std::string(piece)];
    if (at == std::string::npos) break;
    s = at + eot.size();
  }
  return counts;
}

std::vector<WordCount> as_words(const std::map<std::string, uint64_t>& counts) {
  std::vector<WordCount> words;
  for (const auto& [bytes, n] : counts) words.push_back({bytes, n});
  return words;
}

// Naive BPE training: every step recounts every pair of every piece and merges the most frequent,
// the smallest (left, right) on ties (std::map order is bytes as unsigned), left to right in each
// piece. `segments` receives each piece's final tokens.
struct Reference {
  std::vector<Merge> merges;
  size_t tokens = 0;
  std::map<std::string, std::vector<std::string>> segments;
};
Reference reference_learn(const std::map<std::string, uint64_t>& counts, size_t max_tokens,
                          uint64_t min_freq) {
  std::vector<std::pair<std::vector<std::string>, uint64_t>> words;
  for (const auto& [bytes, n] : counts) {
    std::vector<std::string> syms;
    for (char c : bytes) syms.emplace_back(1, c);
    words.emplace_back(syms, n);
  }
  std::set<std::string> vocab;
  for (int b = 0; b < 256; ++b) vocab.insert(std::string(1, static_cast<char>(b)));
  Reference r;
  while (vocab.size() < max_tokens) {
    std::map<std::pair<std::string, std::string>, uint64_t> pairs;
    for (const auto& [syms, n] : words)
      for (size_t i = 0; i + 1 < syms.size(); ++i) pairs[{syms[i], syms[i + 1]}] += n;
    const std::pair<std::string, std::string>* best = nullptr;
    uint64_t best_count = 0;
    for (const auto& [p, n] : pairs)
      if (n > best_count) best = &p, best_count = n;
    if (!best || best_count < std::max<uint64_t>(min_freq, 1)) break;
    const auto [left, right] = *best;
    r.merges.emplace_back(left, right, best_count);
    vocab.insert(left + right);
    for (auto& [syms, n] : words) {
      std::vector<std::string> merged;
      for (size_t i = 0; i < syms.size(); ++i) {
        if (i + 1 < syms.size() && syms[i] == left && syms[i + 1] == right) {
          merged.push_back(left + right);
          ++i;
        } else {
          merged.push_back(syms[i]);
        }
      }
      syms = std::move(merged);
    }
  }
  r.tokens = vocab.size();
  for (const auto& [syms, n] : words) {
    std::string bytes;
    for (const auto& s : syms) bytes += s;
    r.segments[bytes] = syms;
  }
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Real English (base-files ships it on every Debian) plus text that exercises the pre-tokenizer's
// corners: other scripts, digits, runs and ends of whitespace, CRLF, ill-formed UTF-8, specials.
std::string varied_text() {
  std::string text = read_text("/usr/share/common-licenses/GPL-3");
  EXPECT_GT(text.size(), 30000u) << "GPL-3 from base-files missing";
  text +=
      "naïve café, Ünïcödé — 東京 and Привет мир! 12345 67 8.9e10\n"
      "  indented line   \n\n\n\tTabbed\tline\r\nCRLF line\r\n"
      "they're we've I'm you'll she'd it's 'quoted' THEY'RE\n"
      "bad bytes \xff\xfe here \xc3 and there\xe2\x82\n"
      "doc one ends  \n<|endoftext|>doc two<|endoftext|><|endoftext|> doc three\n"
      "emoji 😀😀 and symbols ++-- ==>> ...\n";
  return text;
}

BpeTrainResult train_text(const std::string& text, size_t max_tokens, uint64_t min_freq, int threads = 1) {
  BpeWordCounter counter(threads);
  counter.add_text(text);
  return learn_bpe(counter.sorted(), max_tokens, min_freq);
}

class BpeTrain : public TempDirTest {
 protected:
};

TEST(BpeTrainer, TinyCorpusFirstMerges) {
  // Pieces: "low" 1, " low" 4, " lower" 2, " newest" 6, " widest" 3, "\n" 1.
  const std::string text =
      "low low low low low lower lower newest newest newest newest newest newest widest widest widest\n";
  const BpeTrainResult r = train_text(text, 256 + 13, 2);
  const std::vector<Merge> want = {
      {"e", "s", 9},       // ties with "s"+"t" (9): "e" < "s"
      {"es", "t", 9},      //
      {"l", "o", 7},       // ties with "o"+"w" (7)
      {"lo", "w", 7},      //
      {" ", "low", 6},     // ties at 6 with " n", "n e", "e w", "w est": " " is the smallest left
      {" ", "n", 6},       //
      {" n", "e", 6},      //
      {" ne", "w", 6},     //
      {" new", "est", 6},  //
      {" ", "w", 3},       // " low"+"er" (2) is less frequent
      {" w", "i", 3},      //
      {" wi", "d", 3},     //
      {" wid", "est", 3},  //
  };
  EXPECT_EQ(as_tuples(r.merges), want);
  EXPECT_EQ(r.tokens, 256u + 13);
  EXPECT_FALSE(r.exhausted);
  // Next are the pairs of " lower" (count 2), then nothing occurs twice.
  const BpeTrainResult all = train_text(text, 100000, 2);
  EXPECT_TRUE(all.exhausted);
  ASSERT_EQ(all.merges.size(), 15u);
  EXPECT_EQ(as_tuples(all.merges)[13], Merge(" low", "e", 2));
  EXPECT_EQ(as_tuples(all.merges)[14], Merge(" lowe", "r", 2));
  // With min_frequency 1 nothing more: every piece is one token by then.
  const BpeTrainResult ones = train_text(text, 100000, 1);
  EXPECT_TRUE(ones.exhausted);
  EXPECT_EQ(ones.tokens, 256u + 15);  // the pieces that occur once are already tokens
}

TEST(BpeTrainer, MatchesNaiveReference) {
  const std::string text = varied_text();
  const auto counts = reference_counts(text);
  for (const uint64_t min_freq : {uint64_t{2}, uint64_t{1}}) {
    const Reference ref = reference_learn(counts, 900, min_freq);
    ASSERT_EQ(ref.tokens, 900u);
    // Greedy training: a smaller vocabulary's merges are a prefix of a larger one's.
    for (const size_t tokens : {257, 300, 513, 700, 900}) {
      const BpeTrainResult r = learn_bpe(as_words(counts), tokens, min_freq);
      std::vector<Merge> want(ref.merges.begin(), ref.merges.begin() + (tokens - 256));
      EXPECT_EQ(as_tuples(r.merges), want) << "tokens " << tokens << " min_freq " << min_freq;
      EXPECT_EQ(r.tokens, tokens);
    }
  }
}

TEST(BpeTrainer, MatchesNaiveReferenceToExhaustion) {
  // Small random corpora over a few letters (many ties, overlapping pairs like "aaa") run until no
  // pair is left.
  std::mt19937 rng(7);
  for (int trial = 0; trial < 100; ++trial) {
    std::map<std::string, uint64_t> counts;
    const int n_words = 1 + static_cast<int>(rng() % 60);
    for (int w = 0; w < n_words; ++w) {
      std::string word;
      const int len = 1 + static_cast<int>(rng() % 12);
      for (int i = 0; i < len; ++i) word += static_cast<char>('a' + rng() % 3);
      counts[word] += 1 + rng() % 5;
    }
    const Reference ref = reference_learn(counts, 100000, 1);
    const BpeTrainResult r = learn_bpe(as_words(counts), 100000, 1);
    EXPECT_EQ(as_tuples(r.merges), ref.merges) << "trial " << trial;
    EXPECT_EQ(r.tokens, ref.tokens) << "trial " << trial;
    EXPECT_TRUE(r.exhausted);
  }
}

TEST_F(BpeTrain, CountsDoNotDependOnThreadsOrChunks) {
  // Lines that end in whitespace before a new line or an <|endoftext|> are where a chunk cut
  // could change the pieces; repeat them so that many cuts fall near them.
  std::string text;
  for (int i = 0; i < 300; ++i) {
    text += "Line " + std::to_string(i) + " ends in spaces   \nNext line\n\n  indented\n";
    text += "doc  \n<|endoftext|>After\n<|endoftext|>\n \xe2\x82 broken\xff\n";
  }
  text += varied_text();
  const fs::path file = dir / "corpus.txt";
  std::ofstream(file, std::ios::binary) << text;
  std::vector<std::pair<std::string, uint64_t>> want;
  for (const auto& [bytes, n] : reference_counts(text)) want.emplace_back(bytes, n);

  for (const int threads : {1, 2, 3}) {
    for (const size_t chunk : {size_t{1}, size_t{37}, size_t{1000}, size_t{1} << 20}) {
      BpeWordCounter counter(threads, chunk);
      counter.add_file(file.string());
      std::vector<std::pair<std::string, uint64_t>> got;
      for (const WordCount& w : counter.sorted()) got.emplace_back(w.bytes, w.count);
      EXPECT_EQ(got, want) << threads << " threads, chunks of " << chunk;
      EXPECT_EQ(counter.bytes(), text.size());
    }
  }
  // And the merges learned from them, from text large enough to be split between threads.
  std::string big;
  while (big.size() < (size_t{5} << 20)) big += varied_text();
  const BpeTrainResult one = train_text(big, 2000, 2, 1);
  const BpeTrainResult two = train_text(big, 2000, 2, 2);
  EXPECT_EQ(as_tuples(one.merges), as_tuples(two.merges));
}

TEST_F(BpeTrain, TrainedVocabularyLoadsAndEncodesWithTheLearnedMerges) {
  const std::string text = varied_text();
  const auto counts = reference_counts(text);
  const size_t vocab_size = 1000;  // with <|endoftext|>
  const BpeTrainResult r = learn_bpe(as_words(counts), vocab_size - 1, 2);
  ASSERT_EQ(r.tokens, vocab_size - 1);
  const std::string out = (dir / "tok").string();
  write_gpt2_vocab(out, r.merges);
  const BpeTokenizer tok = load_bpe_tokenizer(out);
  EXPECT_EQ(tok.vocab_size(), vocab_size);
  EXPECT_EQ(tok.special_id("<|endoftext|>"), int64_t(vocab_size - 1));

  // Encoding the training text (<|endoftext|> as the special token, as training cut there) splits
  // every piece exactly as training left it.
  const std::string plain = replace_invalid_utf8(text);
  const std::vector<uint32_t> ids = tok.encode(plain, true);
  const Reference ref = reference_learn(counts, vocab_size - 1, 2);
  std::vector<std::string> want, got;
  const std::string eot = "<|endoftext|>";
  for (size_t s = 0;;) {
    const size_t at = plain.find(eot, s);
    for (std::string_view piece :
         gpt2_pretokenize(std::string_view(plain).substr(s, at == std::string::npos ? at : at - s))) {
      const auto& tokens = ref.segments.at(std::string(piece));
      want.insert(want.end(), tokens.begin(), tokens.end());
    }
    if (at == std::string::npos) break;
    want.push_back(eot);
    s = at + eot.size();
  }
  for (const uint32_t id : ids) got.push_back(tok.decode(std::span<const uint32_t>(&id, 1)));
  size_t diff = 0;
  while (diff < got.size() && diff < want.size() && got[diff] == want[diff]) ++diff;
  EXPECT_EQ(diff, want.size()) << "first difference at token " << diff << ": encode gave \""
                               << (diff < got.size() ? got[diff] : "") << "\", training \""
                               << (diff < want.size() ? want[diff] : "") << "\"";
  EXPECT_EQ(got.size(), want.size());
  EXPECT_EQ(tok.decode(ids), plain);
  EXPECT_LT(ids.size(), plain.size() / 2);  // 743 merges on 35 kB of English
  // The single bytes have GPT-2's ids: '!' is 0, byte 0 is 188.
  EXPECT_EQ(tok.encode("!"), std::vector<uint32_t>{0});
  EXPECT_EQ(tok.encode(std::string(1, '\0')), std::vector<uint32_t>{188});
  EXPECT_EQ(tok.encode("a<|endoftext|>b", true), (std::vector<uint32_t>{64, uint32_t(vocab_size - 1), 65}));
}

TEST_F(BpeTrain, WriterRefusesFoldersThatHoldFiles) {
  const std::vector<BpeMerge> merges = {{"a", "b", 2}};
  const fs::path empty = dir / "empty";
  fs::create_directories(empty);
  write_gpt2_vocab(empty.string(), merges);  // an empty folder is fine
  EXPECT_TRUE(fs::is_regular_file(empty / "encoder.json"));
  try {
    write_gpt2_vocab(empty.string(), merges);
    ADD_FAILURE() << "wrote over a vocabulary";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("not empty"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "file") << "x";
  EXPECT_THROW(check_vocab_out_dir((dir / "file").string()), UserError);
  // Nothing but the finished folders is left behind.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 2u);
}

// The writer's layout is GPT-2's to the byte: fed GPT-2's own merges it writes GPT-2's files.
TEST_F(BpeTrain, WriterReproducesGpt2Files) {
  const std::string gpt2 = tokenizer_data_dir() + "/gpt2";
  if (!fs::is_regular_file(gpt2 + "/vocab.bpe") || !fs::is_regular_file(gpt2 + "/encoder.json")) {
    // ctest's e2e.bpe_writer_gpt2 fetches the files first and sets KERVAN_REQUIRE_GPT2.
    if (std::getenv("KERVAN_REQUIRE_GPT2")) FAIL() << "GPT-2's files are missing from " << gpt2;
    GTEST_SKIP() << "GPT-2's files are not installed (scripts/get-tokenizer.sh gpt2)";
  }
  // GPT-2's mapping, inverted: the character each byte is written as -> the byte.
  std::map<std::string, char> unmap;
  int shifted = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const int cp = printable ? b : shifted++;
    std::string ch;
    if (cp < 0x80) {
      ch += static_cast<char>(cp);
    } else {
      ch += static_cast<char>(0xC0 | (cp >> 6));
      ch += static_cast<char>(0x80 | (cp & 0x3F));
    }
    unmap[ch] = static_cast<char>(b);
  }
  auto bytes_of = [&](const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size();) {
      const size_t n = (static_cast<unsigned char>(s[i]) < 0x80) ? 1 : 2;
      out += unmap.at(s.substr(i, n));
      i += n;
    }
    return out;
  };
  std::istringstream lines(read_text(gpt2 + "/vocab.bpe"));
  std::string line;
  std::vector<BpeMerge> merges;
  std::getline(lines, line);  // #version: 0.2
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    merges.push_back({bytes_of(line.substr(0, sp)), bytes_of(line.substr(sp + 1)), 0});
  }
  ASSERT_EQ(merges.size(), 50000u);
  const std::string out = (dir / "gpt2").string();
  write_gpt2_vocab(out, merges);
  EXPECT_TRUE(read_text(out + "/vocab.bpe") == read_text(gpt2 + "/vocab.bpe"));
  EXPECT_TRUE(read_text(out + "/encoder.json") == read_text(gpt2 + "/encoder.json"));
}

}  // namespace
}  // namespace kervan
