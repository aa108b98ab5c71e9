// `kervan prepare`'s pieces: the streaming readers (delimiters, .jsonl fields, gzip and zstd,
// damage, bad lines) and the corpus builder (thread invariance, the validation split, resume).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "datasets/prepare/corpus_dir.h"
#include "datasets/prepare/corpus_writer.h"
#include "datasets/prepare/text_sources.h"
#include "temp_dir_test.h"

namespace kervan {
namespace {

namespace fs = std::filesystem;

class Prepare : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directories(dir / "in");
  }

  std::string put(const std::string& name, const std::string& bytes) {
    const fs::path p = dir / "in" / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }
  static std::string gzip(const std::string& s) {
    z_stream z{};
    deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&z, s.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
    z.avail_in = s.size();
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = out.size();
    deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
  }
  static std::string zstd(const std::string& s) {
    std::string out(ZSTD_compressBound(s.size()), '\0');
    out.resize(ZSTD_compress(out.data(), out.size(), s.data(), s.size(), 3));
    return out;
  }
  // The documents of one file.
  std::vector<std::string> docs_of(const std::string& path, const TextReadOptions& opt = {},
                                   uint64_t* skipped = nullptr) {
    const std::vector<TextSource> sources = discover_text_sources({path});
    DocumentReader r(sources.at(0), opt);
    std::vector<std::string> out;
    RawDocument d;
    while (r.next(d)) out.push_back(d.text);
    if (skipped) *skipped = r.skipped_lines();
    return out;
  }
  std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const UserError& e) {
      return e.what();
    }
    return "";
  }
  // Every file of a folder (name -> bytes), records and temporary files included.
  static std::map<std::string, std::string> files_of(const fs::path& d) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(d))
      if (e.is_regular_file()) {
        std::ifstream in(e.path(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        out[fs::relative(e.path(), d).string()] = ss.str();
      }
    return out;
  }
  // A corpus of many one-line documents over .txt, .jsonl.gz and .jsonl.zst files.
  void make_inputs() {
    std::string txt, jsonl;
    for (int i = 0; i < 300; ++i) txt += "text document number " + std::to_string(i) + "\n<|endoftext|>\n";
    for (int i = 0; i < 300; ++i) jsonl += "{\"text\": \"json document " + std::to_string(i) + "\"}\n";
    put("a/one.txt", txt);
    put("b/two.jsonl.gz", gzip(jsonl));
    put("b/three.jsonl.zst", zstd(jsonl));
    put("c.txt", txt.substr(0, 2000));
  }
  CorpusManifest build(const std::string& out, int threads, BuildStats* stats = nullptr, double val = 0.1) {
    CorpusOptions o;
    o.out_dir = out;
    o.threads = threads;
    o.shard_tokens = 2000;
    o.unit_bytes = 1000;
    return build_into(CorpusDir::begin(out, false, kRequest), o, stats, val, kRequest);
  }
  CorpusManifest build_into(const std::unique_ptr<CorpusDir>& d, CorpusOptions o, BuildStats* stats = nullptr,
                            double val = 0.1, const std::string& request = kRequest) {
    o.out_dir = d->build_dir();
    CorpusBuilder b(o, discover_text_sources({(dir / "in").string()}), bytes_tok, val_rule_for_fraction(val));
    std::vector<size_t> all(b.units().size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    const BuildStats s = b.build(all, [](const BuildProgress&) {});
    if (stats) *stats = s;
    CorpusManifest m = b.manifest("test");
    m.request = request;
    d->finish(m);
    return m;
  }
  static constexpr const char* kRequest = "request-1";

  DocumentTokenizer bytes_tok = DocumentTokenizer::load("bytes");
};

TEST_F(Prepare, TxtSplitsOnDelimiterLines) {
  const auto p = put("a.txt",
                     "one\nstill one\n<|endoftext|>\r\n\n<|endoftext|>\ntwo<|endoftext|>\n<|endoftext|>\n"
                     "<|endoftext|>\nthree\n\n");
  EXPECT_EQ(docs_of(p), (std::vector<std::string>{"one\nstill one", "two<|endoftext|>", "three\n"}));
  EXPECT_EQ(docs_of(put("b.txt", "no delimiter\nat all")),
            (std::vector<std::string>{"no delimiter\nat all"}));
  TextReadOptions opt;
  opt.doc_delimiter = "---";
  EXPECT_EQ(docs_of(put("c.txt", "x\n---\ny\n<|endoftext|>\n"), opt),
            (std::vector<std::string>{"x", "y\n<|endoftext|>"}));
  EXPECT_TRUE(docs_of(put("d.txt", "")).empty());
}

TEST_F(Prepare, JsonlTakesTheField) {
  const auto p =
      put("a.jsonl",
          "{\"text\": \"a\\nb\", \"id\": 1}\n\n   \n{\"body\": \"x\", \"text\": \"c\"}\n{\"text\": \"\"}\n"
          "{\"text\": \"bad \xff byte\"}");
  EXPECT_EQ(docs_of(p), (std::vector<std::string>{"a\nb", "c", "bad \xEF\xBF\xBD byte"}));
  TextReadOptions opt;
  opt.text_field = "body";
  opt.skip_bad_lines = true;
  uint64_t skipped = 0;
  EXPECT_EQ(docs_of(p, opt, &skipped), (std::vector<std::string>{"x"}));
  EXPECT_EQ(skipped, 3u);
}

TEST_F(Prepare, BadLinesNameFileAndLine) {
  const auto p = put("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": 5}\n");
  EXPECT_NE(error_of([&] { docs_of(p); }).find("bad.jsonl:2: field \"text\" is not a string"),
            std::string::npos);
  const auto q =
      put("bad2.jsonl", "{\"text\": \"ok\"}\n\nnot json\n[1]\n{\"other\": \"x\"}\n{\"text\": \"fine\"}\n");
  EXPECT_NE(error_of([&] { docs_of(q); }).find("bad2.jsonl:3: not valid JSON"), std::string::npos);
  TextReadOptions opt;
  opt.skip_bad_lines = true;
  uint64_t skipped = 0;
  EXPECT_EQ(docs_of(q, opt, &skipped), (std::vector<std::string>{"ok", "fine"}));
  EXPECT_EQ(skipped, 3u);
}

TEST_F(Prepare, CompressedInputsAndDamage) {
  std::string text;
  for (int i = 0; i < 20000; ++i)
    text += "line " + std::to_string(i) + (i % 100 == 99 ? "\n<|endoftext|>\n" : "\n");
  const auto plain = docs_of(put("p.txt", text));
  ASSERT_EQ(plain.size(), 200u);
  EXPECT_EQ(docs_of(put("g.txt.gz", gzip(text))), plain);
  EXPECT_EQ(docs_of(put("gg.txt.gz", gzip(text.substr(0, 5000)) + gzip(text.substr(5000)))),
            plain);  // 2 members
  EXPECT_EQ(docs_of(put("z.txt.zst", zstd(text))), plain);
  EXPECT_EQ(docs_of(put("zz.txt.zst", zstd(text.substr(0, 5000)) + zstd(text.substr(5000)))), plain);
  const std::string g = gzip(text), z = zstd(text);
  EXPECT_NE(
      error_of([&] { docs_of(put("t.txt.gz", g.substr(0, g.size() / 2))); }).find("t.txt.gz: truncated gzip"),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              docs_of(put("t.txt.zst", z.substr(0, z.size() / 2)));
            }).find("t.txt.zst: truncated zstd"),
            std::string::npos);
  EXPECT_NE(error_of([&] { docs_of(put("n.txt.gz", "not gzip at all")); }).find("n.txt.gz: corrupt gzip"),
            std::string::npos);
  EXPECT_NE(error_of([&] { docs_of(put("n.txt.zst", "not zstd at all")); }).find("n.txt.zst: corrupt zstd"),
            std::string::npos);
  EXPECT_TRUE(docs_of(put("e.txt.zst", "")).empty());
  EXPECT_TRUE(docs_of(put("e.txt.gz", "")).empty());
}

TEST_F(Prepare, DiscoveryIsSortedAndStrict) {
  put("d/b.txt", "x");
  put("d/a/z.jsonl.zst", zstd("{\"text\":\"x\"}"));
  put("d/.hidden", "x");
  const auto s = discover_text_sources({(dir / "in" / "d").string()});
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].key, "a/z.jsonl.zst");
  EXPECT_EQ(s[0].format, TextFormat::Jsonl);
  EXPECT_EQ(s[0].compression, Compression::Zstd);
  EXPECT_EQ(s[1].key, "b.txt");
  put("d/c.csv", "x");
  EXPECT_NE(error_of([&] {
              discover_text_sources({(dir / "in" / "d").string()});
            }).find("c.csv: unknown input type"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              discover_text_sources({(dir / "nothere.txt").string()});
            }).find("nothere.txt: cannot open"),
            std::string::npos);
}

TEST_F(Prepare, OutputDoesNotDependOnThreads) {
  make_inputs();
  const CorpusManifest m1 = build((dir / "t1").string(), 1);
  const CorpusManifest m3 = build((dir / "t3").string(), 3);
  const auto f1 = files_of(dir / "t1"), f3 = files_of(dir / "t3");
  EXPECT_EQ(f1, f3);
  EXPECT_GT(m1.splits.at("train").size(), 3u);  // several units and rollovers
  EXPECT_FALSE(m1.splits.at("val").empty());
  uint64_t docs = 0;
  for (const auto& [split, shards] : m1.splits)
    for (const ShardEntry& s : shards) {
      docs += s.documents;
      EXPECT_LE(s.tokens, 2000u);
      open_split_shards((dir / "t1").string(), m1, split);  // complete and checksummed
    }
  uint64_t want = 0;
  for (const TextSource& s : discover_text_sources({(dir / "in").string()})) {
    DocumentReader r(s, {});
    RawDocument d;
    while (r.next(d)) ++want;
  }
  EXPECT_EQ(docs, want);
  EXPECT_GT(want, 900u);
  EXPECT_FALSE(fs::exists(dir / "t1" / ".prepare"));
}

TEST_F(Prepare, ValidationSplitIsDeterministic) {
  make_inputs();
  const auto sources = discover_text_sources({(dir / "in").string()});
  uint64_t val = 0, total = 0;
  const ValRule rule = val_rule_for_fraction(0.2);
  for (const TextSource& s : sources) {
    DocumentReader r(s, {});
    RawDocument d;
    while (r.next(d)) {
      ++total;
      val += rule.is_val(document_hash(7, s.key, d.offset));
    }
  }
  EXPECT_NEAR(double(val) / total, 0.2, 0.05);
  // Exactly N by count; the same N documents every time.
  const ValRule by_count = val_rule_for_count(sources, {}, 7, 50);
  uint64_t n = 0;
  for (const TextSource& s : sources) {
    DocumentReader r(s, {});
    RawDocument d;
    while (r.next(d)) n += by_count.is_val(document_hash(7, s.key, d.offset));
  }
  EXPECT_EQ(n, 50u);
  EXPECT_EQ(val_rule_for_count(sources, {}, 7, 50).max_hash, by_count.max_hash);
  EXPECT_NE(val_rule_for_count(sources, {}, 8, 50).max_hash, by_count.max_hash);
  EXPECT_TRUE(val_rule_for_fraction(0).none);
  EXPECT_NE(error_of([&] { val_rule_for_count(sources, {}, 7, 100000); }).find("would take every document"),
            std::string::npos);
}

TEST_F(Prepare, ResumeKeepsFinishedUnits) {
  make_inputs();
  const std::string out = (dir / "r").string();
  // A first run that stops after some units: build only the first two, as an interrupted run would.
  CorpusOptions o;
  o.out_dir = out;
  o.threads = 2;
  o.shard_tokens = 2000;
  o.unit_bytes = 1000;
  {
    const auto d = CorpusDir::begin(out, false, kRequest);
    CorpusBuilder b(o, discover_text_sources({(dir / "in").string()}), bytes_tok, val_rule_for_fraction(0.1));
    ASSERT_GE(b.units().size(), 3u);
    b.build({0, 1}, [](const BuildProgress&) {});
  }
  std::ofstream(out + "/train-00002-00000.kvs.tmp") << "half a shard";  // left by a killed run
  const auto before = files_of(out);
  BuildStats stats;
  const CorpusManifest m = build(out, 2, &stats);
  EXPECT_EQ(stats.kept_units, 2u);
  EXPECT_GT(stats.kept_shards, 0u);
  EXPECT_FALSE(fs::exists(out + "/train-00002-00000.kvs.tmp"));
  const auto after = files_of(out);
  for (const auto& [name, bytes] : before)
    if (name.ends_with(".kvs")) {
      EXPECT_EQ(after.at(name), bytes) << name;
    }
  // The same corpus as an uninterrupted run.
  build((dir / "full").string(), 1);
  EXPECT_EQ(after, files_of(dir / "full"));
  EXPECT_TRUE(CorpusDir::begin(out, false, kRequest)->complete());  // complete now: a rerun has nothing to do
}

// A shard damaged between an interrupted run and its resume is not kept: its unit is made again,
// and the corpus equals an uninterrupted run's.
TEST_F(Prepare, ResumeRedoesAUnitWhoseShardWasDamaged) {
  make_inputs();
  const std::string out = (dir / "d").string();
  CorpusOptions o;
  o.out_dir = out;
  o.threads = 1;
  o.shard_tokens = 2000;
  o.unit_bytes = 1000;
  {
    const auto d = CorpusDir::begin(out, false, kRequest);
    CorpusBuilder b(o, discover_text_sources({(dir / "in").string()}), bytes_tok, val_rule_for_fraction(0.1));
    b.build({0, 1}, [](const BuildProgress&) {});
  }
  const std::string shard = out + "/train-00000-00000.kvs";
  ASSERT_TRUE(fs::exists(shard));
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('Z');
  }
  BuildStats stats;
  build(out, 1, &stats);
  EXPECT_EQ(stats.kept_units, 1u) << "the unit with the damaged shard must be made again";
  build((dir / "full").string(), 1);
  EXPECT_EQ(files_of(out), files_of(dir / "full"));
}

// kervan writes only into a folder it made, and never takes a corpus made for another request as
// the result of this one.
TEST_F(Prepare, OutputFolderOwnership) {
  const fs::path theirs = dir / "theirs";
  fs::create_directories(theirs);
  std::ofstream(theirs / "train-00000-00000.kvs") << "the user's own file";
  std::ofstream(theirs / "notes.tmp") << "also theirs";
  try {
    CorpusDir::begin(theirs.string(), false, kRequest);
    ADD_FAILURE() << "a folder with someone else's files was taken";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("not a kervan corpus"), std::string::npos) << e.what();
  }
  EXPECT_THROW(CorpusDir::begin(theirs.string(), true, kRequest), UserError)
      << "--overwrite does not change that";
  EXPECT_TRUE(fs::exists(theirs / "train-00000-00000.kvs"));
  EXPECT_TRUE(fs::exists(theirs / "notes.tmp"));

  std::ofstream(dir / "afile") << "x";
  EXPECT_THROW(CorpusDir::begin((dir / "afile").string(), false, kRequest), UserError);

  make_inputs();
  const std::string out = (dir / "mine").string();
  build(out, 1);
  EXPECT_TRUE(CorpusDir::begin(out, false, kRequest)->complete());
  try {
    CorpusDir::begin(out, false, "another request");
    ADD_FAILURE() << "a corpus made from other inputs was taken as complete";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("from other inputs or options"), std::string::npos) << e.what();
  }
  {
    const auto d = CorpusDir::begin(out, true, "another request");
    EXPECT_FALSE(d->complete()) << "--overwrite rebuilds it";
    EXPECT_TRUE(d->replacing());
    EXPECT_TRUE(fs::exists(out + "/manifest.json")) << "the old corpus stays until the new one is complete";
  }
  EXPECT_EQ(read_corpus_manifest(out).request, kRequest) << "an abandoned rebuild changed nothing";
  EXPECT_FALSE(fs::exists(out + "/" + kPrepareLockFile)) << "the lock file goes with the lock";
}

// --overwrite builds aside and swaps the new corpus in when it is complete; the user's own files in
// the folder stay; the folder aside and the lock files are gone.
TEST_F(Prepare, OverwriteSwapsTheNewCorpusIn) {
  make_inputs();
  const std::string out = (dir / "swap").string();
  build(out, 1);
  std::ofstream(out + "/README.txt") << "the user's note";
  CorpusOptions o;
  o.threads = 1;
  o.shard_tokens = 3000;  // another corpus: other shards
  o.unit_bytes = 1000;
  const auto d = CorpusDir::begin(out, true, "request-2");
  ASSERT_TRUE(d->replacing());
  EXPECT_EQ(d->build_dir(), CorpusDir::aside_dir(out));
  build_into(d, o, nullptr, 0.1, "request-2");
  EXPECT_EQ(read_corpus_manifest(out).request, "request-2");
  EXPECT_TRUE(fs::exists(out + "/README.txt"));
  EXPECT_FALSE(fs::exists(CorpusDir::aside_dir(out)));
  for (const auto& [split, shards] : read_corpus_manifest(out).splits)
    for (const ShardEntry& e : shards) EXPECT_TRUE(fs::exists(out + "/" + e.file)) << e.file;
}

// One prepare at a time per folder: a second is refused naming the folder and the holder.
TEST_F(Prepare, ASecondPrepareIntoTheSameFolderIsRefused) {
  const std::string out = (dir / "busy").string();
  const auto first = CorpusDir::begin(out, false, kRequest);
  try {
    CorpusDir::begin(out, false, kRequest);
    ADD_FAILURE() << "two prepares into one folder";
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(out), std::string::npos) << what;
    EXPECT_NE(what.find("in use by another kervan prepare (pid " + std::to_string(::getpid())), std::string::npos)
        << what;
  }
}

}  // namespace
}  // namespace kervan
