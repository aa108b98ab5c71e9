// GPT-2 BPE tokenizer on small hand-made vocabularies: the byte mapping of the files, merge order
// (against a naive reference), the pre-tokenizer's splits, U+FFFD repair, special tokens,
// threads, and every way the files can be wrong. tests/e2e/tokenizer_diff.sh compares the real
// GPT-2 vocabulary with tiktoken.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "core/error.h"
#include "datasets/tokenizer/bpe_tokenizer.h"
#include "datasets/tokenizer/gpt2_pretokenizer.h"
#include "datasets/tokenizer/tokenizer_files.h"
#include "datasets/tokenizer/utf8.h"

namespace kervan {
namespace {

namespace fs = std::filesystem;

// GPT-2's byte-to-unicode mapping, written out independently of the tokenizer's: printable
// Latin-1 bytes stand for themselves, the rest become U+0100, U+0101, ... in byte order.
std::string mapped(const std::string& bytes) {
  std::string out;
  for (unsigned char b : bytes) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    uint32_t cp = b;
    if (!printable) {
      cp = 256;
      for (unsigned c = 0; c < b; ++c)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE))) ++cp;
    }
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// A test vocabulary: the 256 bytes with ids 1000 + 255 - b (ids unlike ranks on purpose), then
// the merges in order with ids counting down from 999, then <|endoftext|>.
struct Vocab {
  std::vector<std::pair<std::string, std::string>> merges;
  std::map<std::string, uint32_t> ids;  // token bytes -> id
  uint32_t eot = 5000;
  Vocab() {
    for (int b = 0; b < 256; ++b) ids[std::string(1, static_cast<char>(b))] = 1000 + 255 - b;
  }
  void merge(const std::string& a, const std::string& b) {
    merges.emplace_back(a, b);
    if (!ids.count(a + b)) ids[a + b] = 999 - static_cast<uint32_t>(ids.size() - 256);
  }
};

class Tokenizer : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("kervan_tok_" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir / name, std::ios::binary) << text;
  }
  void write_vocab(const Vocab& v) {
    std::string j = "{";
    for (const auto& [bytes, id] : v.ids)
      j += "\"" + json_escape(mapped(bytes)) + "\": " + std::to_string(id) + ", ";
    j += "\"<|endoftext|>\": " + std::to_string(v.eot) + "}";
    write("encoder.json", j);
    std::string m = "#version: 0.2\n";
    for (const auto& [a, b] : v.merges) m += mapped(a) + " " + mapped(b) + "\n";
    write("vocab.bpe", m);
  }
  BpeTokenizer load() {
    return BpeTokenizer::from_files((dir / "encoder.json").string(), (dir / "vocab.bpe").string());
  }
  std::string load_error() {
    try {
      load();
      return "";
    } catch (const UserError& e) {
      return e.what();
    }
  }
  fs::path dir;
};

// tiktoken's merge rule, on strings: join the adjacent pair whose concatenation has the lowest
// rank, leftmost on ties, until no pair is a token.
std::vector<uint32_t> reference_encode(const Vocab& v, const std::string& text) {
  std::map<std::string, size_t> rank;
  for (int b = 0; b < 256; ++b) rank[std::string(1, static_cast<char>(b))] = b;
  for (const auto& [a, b] : v.merges) rank.emplace(a + b, 256 + rank.size() - 256);
  std::vector<uint32_t> out;
  for (std::string_view piece : gpt2_pretokenize(text)) {
    std::vector<std::string> parts;
    for (char c : piece) parts.emplace_back(1, c);
    for (;;) {
      size_t best = SIZE_MAX, at = 0;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        auto it = rank.find(parts[i] + parts[i + 1]);
        if (it != rank.end() && it->second < best) best = it->second, at = i;
      }
      if (best == SIZE_MAX) break;
      parts[at] += parts[at + 1];
      parts.erase(parts.begin() + at + 1);
    }
    for (const auto& p : parts) out.push_back(v.ids.at(p));
  }
  return out;
}

Vocab small_vocab() {
  Vocab v;
  v.merge("h", "e");
  v.merge("l", "l");
  v.merge("he", "ll");
  v.merge("hell", "o");
  v.merge(" ", "w");
  v.merge("o", "r");
  v.merge(" w", "or");
  v.merge("\xC3", "\xA9");  // é
  return v;
}

TEST_F(Tokenizer, MergesAndByteMapping) {
  const Vocab v = small_vocab();
  write_vocab(v);
  const BpeTokenizer t = load();
  EXPECT_EQ(t.vocab_size(), 5001u);
  EXPECT_EQ(t.encode("hello"), (std::vector<uint32_t>{v.ids.at("hello")}));
  EXPECT_EQ(t.encode("hello world"),
            (std::vector<uint32_t>{v.ids.at("hello"), v.ids.at(" wor"), v.ids.at("l"), v.ids.at("d")}));
  EXPECT_EQ(t.encode("\xC3\xA9t\xC3\xA9"),
            (std::vector<uint32_t>{v.ids.at("\xC3\xA9"), v.ids.at("t"), v.ids.at("\xC3\xA9")}));
  // Every byte decodes to itself through its mapped character (space = U+0120, 0x00 = U+0100...).
  for (int b = 0; b < 256; ++b)
    EXPECT_EQ(t.decode(std::vector<uint32_t>{static_cast<uint32_t>(1000 + 255 - b)}),
              std::string(1, static_cast<char>(b)));
  for (int b = 0; b < 128; ++b)
    EXPECT_EQ(t.encode(std::string(1, static_cast<char>(b))),
              (std::vector<uint32_t>{static_cast<uint32_t>(1000 + 255 - b)}));
}

TEST_F(Tokenizer, MergeOrderMatchesReference) {
  // Random merges over a small alphabet, then random texts with short and very long words (the
  // heap path above 64 bytes must merge exactly like the quadratic one).
  std::mt19937 rng(7);
  Vocab v;
  v.merge("a", "a");  // equal ranks side by side: the leftmost pair must merge first
  v.merge("b", "b");
  std::vector<std::string> tokens = {"a", "b", "c", "d", " ", "aa", "bb"};
  for (int i = 0; i < 120; ++i) {
    const std::string& a = tokens[rng() % tokens.size()];
    const std::string& b = tokens[rng() % tokens.size()];
    if ((a + b).size() > 12) continue;
    v.merge(a, b);
    tokens.push_back(a + b);
  }
  write_vocab(v);
  const BpeTokenizer t = load();
  BpeTokenizer::Cache shared;  // one cache across all texts, as `kervan prepare` uses it
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const size_t len = trial % 10 == 0 ? 40 + rng() % 200 : rng() % 15;
    for (size_t i = 0; i < len; ++i)
      text += std::string(1 + rng() % 4, "abcd  "[rng() % (trial % 10 == 0 ? 4 : 6)]);
    ASSERT_EQ(t.encode(text), reference_encode(v, text)) << "text: " << text;
    ASSERT_EQ(t.decode(t.encode(text)), text);
    std::vector<uint32_t> cached = {7};  // encode_ordinary appends
    t.encode_ordinary(text, shared, cached);
    ASSERT_EQ(std::vector<uint32_t>(cached.begin() + 1, cached.end()), reference_encode(v, text)) << "text: " << text;
  }
}

TEST(Gpt2Pretokenizer, SplitsLikeTheRegex) {
  using P = std::vector<std::string_view>;
  EXPECT_EQ(gpt2_pretokenize("Hello world"), (P{"Hello", " world"}));
  EXPECT_EQ(gpt2_pretokenize("I'm he'll we're"), (P{"I", "'m", " he", "'ll", " we", "'re"}));
  EXPECT_EQ(gpt2_pretokenize("I'M"), (P{"I", "'", "M"}));                // upper case: no contraction
  EXPECT_EQ(gpt2_pretokenize("don\u2019t"), (P{"don", "\u2019", "t"}));  // nor with U+2019
  EXPECT_EQ(gpt2_pretokenize("'sam"), (P{"'s", "am"}));
  EXPECT_EQ(gpt2_pretokenize("!'s"), (P{"!'", "s"}));
  EXPECT_EQ(gpt2_pretokenize("a  b"), (P{"a", " ", " b"}));
  EXPECT_EQ(gpt2_pretokenize("a\n\nb"), (P{"a", "\n", "\n", "b"}));
  EXPECT_EQ(gpt2_pretokenize("a\n\n"), (P{"a", "\n\n"}));
  EXPECT_EQ(gpt2_pretokenize("a   "), (P{"a", "   "}));
  EXPECT_EQ(gpt2_pretokenize("x1y 23"), (P{"x", "1", "y", " 23"}));
  EXPECT_EQ(gpt2_pretokenize("  !!x"), (P{" ", " !!", "x"}));
  EXPECT_EQ(gpt2_pretokenize("e\u0301t\u00e9"),
            (P{"e", "\u0301", "t\u00e9"}));  // combining mark: not a letter
  EXPECT_EQ(gpt2_pretokenize("a\u00a0b \u3000c"), (P{"a", "\u00a0", "b", " ", "\u3000", "c"}));
  EXPECT_EQ(gpt2_pretokenize("\x1c x"), (P{"\x1c", " x"}));  // U+001C is not White_Space
  EXPECT_EQ(gpt2_pretokenize("\u4e2d\u6587 \U0001F44D\U0001F3FD!"),
            (P{"\u4e2d\u6587", " \U0001F44D\U0001F3FD!"}));

  const CharClasses& c = CharClasses::get();
  EXPECT_EQ(c.of('a'), CharClass::kLetter);
  EXPECT_EQ(c.of('5'), CharClass::kNumber);
  EXPECT_EQ(c.of('\t'), CharClass::kSpace);
  EXPECT_EQ(c.of(0x0663), CharClass::kNumber);  // Arabic-Indic three
  EXPECT_EQ(c.of(0x2028), CharClass::kSpace);
  EXPECT_EQ(c.of(0x0301), CharClass::kOther);
  EXPECT_EQ(c.of(0x1F44D), CharClass::kOther);
  EXPECT_EQ(c.of(0x20000), CharClass::kLetter);  // CJK extension B
  EXPECT_EQ(c.of(0x110000), CharClass::kOther);
}

TEST(Utf8, IllFormedSequencesBecomeOneReplacementEach) {
  const std::string R = "\xEF\xBF\xBD";
  EXPECT_TRUE(is_valid_utf8("plain \u00e9\u4e2d\U0001F44D"));
  EXPECT_EQ(replace_invalid_utf8("ok"), "ok");
  EXPECT_EQ(replace_invalid_utf8("\xFF"), R);
  EXPECT_EQ(replace_invalid_utf8("a\xC3("), "a" + R + "(");
  EXPECT_EQ(replace_invalid_utf8("\xE2\x82"
                                 "A"),
            R + "A");                                                  // truncated: one U+FFFD
  EXPECT_EQ(replace_invalid_utf8("\xED\xA0\x80"), R + R + R);          // surrogate
  EXPECT_EQ(replace_invalid_utf8("\xC0\xAF"), R + R);                  // overlong
  EXPECT_EQ(replace_invalid_utf8("\xF4\x90\x80\x80"), R + R + R + R);  // above U+10FFFF
  EXPECT_EQ(replace_invalid_utf8("x\xF0\x9F\x98"), "x" + R);           // cut at the end
}

TEST_F(Tokenizer, InvalidUtf8IsEncodedAsReplacementCharacter) {
  write_vocab(small_vocab());
  const BpeTokenizer t = load();
  EXPECT_EQ(t.encode("he\xFFllo \xE2\x82"), t.encode("he\xEF\xBF\xBDllo \xEF\xBF\xBD"));
}

TEST_F(Tokenizer, SpecialTokenOnlyWhenAllowed) {
  const Vocab v = small_vocab();
  write_vocab(v);
  const BpeTokenizer t = load();
  EXPECT_EQ(t.special_id("<|endoftext|>"), 5000);
  const std::string text = "hello<|endoftext|>hello";
  const std::vector<uint32_t> plain = t.encode(text);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 5000u), 0);
  EXPECT_EQ(t.decode(plain), text);
  EXPECT_EQ(t.encode(text, true), (std::vector<uint32_t>{v.ids.at("hello"), 5000, v.ids.at("hello")}));
  EXPECT_EQ(t.decode(t.encode(text, true)), text);
  // Segments are encoded on their own: trailing spaces before the special stay one piece.
  const std::vector<uint32_t> seg = t.encode("a  <|endoftext|>", true);
  EXPECT_EQ(seg, (std::vector<uint32_t>{v.ids.at("a"), v.ids.at(" "), v.ids.at(" "), 5000}));
  EXPECT_THROW(t.decode(std::vector<uint32_t>{4000}), UserError);  // a hole in the ids
  EXPECT_THROW(t.decode(std::vector<uint32_t>{5001}), UserError);
}

TEST_F(Tokenizer, ThreadsGiveTheSameIds) {
  write_vocab(small_vocab());
  const BpeTokenizer t = load();
  std::mt19937 rng(3);
  const char* words[] = {"hello",         " world",        "\n", "\n\n", "  ", "Hello",
                         "\u00e9t\u00e9", "<|endoftext|>", "x",  "\n "};
  std::string text;
  while (text.size() < (size_t{3} << 20)) text += words[rng() % 10];
  for (bool special : {false, true}) {
    const std::vector<uint32_t> one = t.encode(text, special, 1);
    EXPECT_EQ(t.encode(text, special, 2), one);
    EXPECT_EQ(t.encode(text, special, 5), one);
  }
}

TEST_F(Tokenizer, BadFilesNameTheFileAndTheProblem) {
  const Vocab v = small_vocab();
  const std::string enc = (dir / "encoder.json").string(), bpe = (dir / "vocab.bpe").string();
  write_vocab(v);
  write("encoder.json", "{\"a\": 1,");
  EXPECT_NE(load_error().find(enc + ": not valid JSON"), std::string::npos) << load_error();
  write("encoder.json", "{\"a\": \"x\"}");
  EXPECT_NE(load_error().find(enc + ": token \"a\" has a string as id"), std::string::npos) << load_error();
  write("encoder.json", "[1, 2]");
  EXPECT_NE(load_error().find(enc + ": unexpected array"), std::string::npos) << load_error();
  write("encoder.json", "{\"a\": 1, \"b\": 1}");
  EXPECT_NE(load_error().find(enc + ": id 1 is used twice"), std::string::npos) << load_error();
  write("encoder.json", "{\"a\": 1, \"b\": 2}");
  EXPECT_NE(load_error().find(enc + ": has no token for byte 0"), std::string::npos) << load_error();

  write_vocab(v);
  write("vocab.bpe", "#version: 0.2\nh e\nhe\n");
  EXPECT_NE(load_error().find(bpe + ":3: expected a merge"), std::string::npos) << load_error();
  write("vocab.bpe", "#version: 0.2\nh e\nhel lo\n");
  EXPECT_NE(load_error().find(bpe + ":3: merges a token that no earlier merge made"), std::string::npos)
      << load_error();
  write("vocab.bpe", "#version: 0.2\nx y\n");
  EXPECT_NE(load_error().find(bpe + ":2: the merge of \"x y\" is not a token"), std::string::npos)
      << load_error();
  fs::remove(dir / "vocab.bpe");
  EXPECT_NE(load_error().find(bpe + ": cannot open"), std::string::npos) << load_error();
}

TEST_F(Tokenizer, Gpt2FilesAreFoundAndChecked) {
  const char* old = std::getenv("KERVAN_DATA_DIR");
  const std::string saved = old ? old : "";
  ::setenv("KERVAN_DATA_DIR", (dir / "data").c_str(), 1);
  auto error_of = [](const std::string& spec) -> std::string {
    try {
      load_bpe_tokenizer(spec);
      return "";
    } catch (const UserError& e) {
      return e.what();
    }
  };
  const std::string gpt2 = (dir / "data" / "tokenizers" / "gpt2").string();
  EXPECT_EQ(tokenizer_data_dir(), (dir / "data" / "tokenizers").string());
  EXPECT_NE(error_of("gpt2").find(
                gpt2 + "/encoder.json: GPT-2 tokenizer file missing (run scripts/get-tokenizer.sh gpt2)"),
            std::string::npos)
      << error_of("gpt2");
  fs::create_directories(gpt2);
  std::ofstream(gpt2 + "/encoder.json") << "{}";
  std::ofstream(gpt2 + "/vocab.bpe") << "";
  EXPECT_NE(error_of("gpt2").find(
                gpt2 + "/encoder.json: SHA-256 is "
                       "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a, expected 1961"),
            std::string::npos)
      << error_of("gpt2");
  EXPECT_NE(error_of((dir / "nothere").string()).find("not a tokenizer name (known: gpt2)"),
            std::string::npos);
  // Any folder with the two files loads as it is.
  write_vocab(small_vocab());
  EXPECT_EQ(load_bpe_tokenizer(dir.string()).encode("hello").size(), 1u);
  if (old)
    ::setenv("KERVAN_DATA_DIR", saved.c_str(), 1);
  else
    ::unsetenv("KERVAN_DATA_DIR");
}

}  // namespace
}  // namespace kervan
