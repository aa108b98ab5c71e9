// The token shard format and the corpus manifest: round trips, and every kind of damage detected
// with an error naming the file.
#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "datasets/format/corpus_manifest.h"
#include "datasets/format/token_shard.h"
#include "temp_dir_test.h"

namespace kervan {
namespace {

namespace fs = std::filesystem;

class Shard : public TempDirTest {
 protected:

  // Three documents of 3, 0 and 4 tokens (odd total, so the token section needs padding).
  ShardHeader write_shard(const std::string& name, uint64_t vocab) {
    TokenShardWriter w(path(name), vocab);
    w.add_document(std::vector<uint32_t>{5, 6, 7});
    w.add_document(std::vector<uint32_t>{});
    w.add_document(std::vector<uint32_t>{static_cast<uint32_t>(vocab - 1), 0, 1, 2});
    return w.finish();
  }
  // The UserError message of opening and verifying `p`, or "" when it is fine.
  std::string error_of(const std::string& p) {
    try {
      TokenShard(p).verify();
      return "";
    } catch (const UserError& e) {
      return e.what();
    }
  }
  void patch_byte(const std::string& p, std::streamoff at, char value) {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(at);
    f.put(value);
  }
  CorpusManifest manifest_for(const std::string& file, const ShardHeader& h) {
    CorpusManifest m;
    m.tokenizer = {"test", h.vocab_size, 0, ""};
    m.splits["train"].push_back({file, h.token_count, h.document_count, fs::file_size(path(file)), h.checksum});
    return m;
  }
};

TEST_F(Shard, RoundTripsBothTokenWidths) {
  for (const uint64_t vocab : {uint64_t{50257}, uint64_t{100000}}) {
    const ShardHeader h = write_shard("a.kvs", vocab);
    TokenShard s(path("a.kvs"));
    s.verify();
    EXPECT_EQ(s.token_bytes(), vocab <= 65536 ? 2u : 4u);
    EXPECT_EQ(s.token_count(), 7u);
    EXPECT_EQ(s.document_count(), 3u);
    EXPECT_EQ(s.header().checksum, h.checksum);
    const std::vector<uint64_t> index(s.document_index().begin(), s.document_index().end());
    EXPECT_EQ(index, (std::vector<uint64_t>{0, 3, 3, 7}));
    const std::vector<uint32_t> want = {5, 6, 7, static_cast<uint32_t>(vocab - 1), 0, 1, 2};
    for (uint64_t i = 0; i < want.size(); ++i) EXPECT_EQ(s.token(i), want[i]) << i;
    EXPECT_EQ(s.file_bytes(), fs::file_size(path("a.kvs")));
    EXPECT_FALSE(fs::exists(path("a.kvs.tmp")));
  }
}

TEST_F(Shard, UnfinishedWriterLeavesNothing) {
  {
    TokenShardWriter w(path("b.kvs"), 300);
    w.add_document(std::vector<uint32_t>{1, 2});
    EXPECT_THROW(w.add_document(std::vector<uint32_t>{300}), UserError);  // outside the vocabulary
  }
  EXPECT_FALSE(fs::exists(path("b.kvs")));
  EXPECT_FALSE(fs::exists(path("b.kvs.tmp")));
}

TEST_F(Shard, DamageIsDetectedAndNamed) {
  write_shard("ok.kvs", 50257);
  const std::string ok = path("ok.kvs");
  EXPECT_EQ(error_of(ok), "");
  auto damaged = [&](const std::string& name) {
    fs::copy_file(ok, path(name));
    return path(name);
  };

  const std::string magic = damaged("magic.kvs");
  patch_byte(magic, 0, 'X');
  EXPECT_EQ(error_of(magic), magic + ": bad magic (not a kervan token shard)");

  const std::string truncated = damaged("truncated.kvs");
  fs::resize_file(truncated, fs::file_size(ok) - 8);
  EXPECT_NE(error_of(truncated).find(truncated + ": size mismatch"), std::string::npos) << error_of(truncated);

  const std::string flipped = damaged("flipped.kvs");
  patch_byte(flipped, sizeof(ShardHeader) + 2, 9);  // a token
  EXPECT_EQ(error_of(flipped), flipped + ": checksum mismatch (the shard is corrupt; prepare it again)");

  const std::string header = damaged("header.kvs");
  patch_byte(header, offsetof(ShardHeader, vocab_size), 1);  // a header field the size check misses
  EXPECT_NE(error_of(header).find("checksum mismatch"), std::string::npos);

  const std::string huge = damaged("huge.kvs");
  // token_count + 2^63: token_count * 2 wraps back to the true size, so only the bound on the
  // counts catches it.
  patch_byte(huge, offsetof(ShardHeader, token_count) + 7, static_cast<char>(0x80));
  EXPECT_NE(error_of(huge).find("size mismatch"), std::string::npos);

  // A well-formed shard (valid checksum) whose header claims a smaller vocabulary than its tokens.
  const std::string foreign = damaged("foreign.kvs");
  {
    std::fstream f(foreign, std::ios::in | std::ios::out | std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ShardHeader h;
    std::memcpy(&h, bytes.data(), sizeof(h));
    h.vocab_size = 100;
    XXH3_state_t* st = XXH3_createState();
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, bytes.data() + sizeof(h), bytes.size() - sizeof(h));
    XXH3_64bits_update(st, &h, offsetof(ShardHeader, checksum));
    h.checksum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    f.seekp(0);
    f.write(reinterpret_cast<const char*>(&h), sizeof(h));
  }
  EXPECT_EQ(error_of(foreign), foreign + ": token 50256 is outside the shard's vocabulary (size 100)");

  std::ofstream(path("short.kvs")) << "KVS";
  EXPECT_NE(error_of(path("short.kvs")).find("too short for a shard header"), std::string::npos);
  EXPECT_NE(error_of(path("absent.kvs")).find(path("absent.kvs") + ": cannot open shard"), std::string::npos);
}

TEST_F(Shard, ManifestRoundTripsAndOpensItsShards) {
  const ShardHeader h = write_shard("train-00000.kvs", 50257);
  CorpusManifest m = manifest_for("train-00000.kvs", h);
  m.sources.push_back({"in.jsonl", 123, 3, 1});
  m.created_by = "test";
  write_corpus_manifest(dir.string(), m);
  EXPECT_FALSE(fs::exists(path("manifest.json.tmp")));

  const CorpusManifest back = read_corpus_manifest(dir.string());
  EXPECT_EQ(back.tokenizer, m.tokenizer);
  ASSERT_EQ(back.splits.at("train").size(), 1u);
  const ShardEntry& e = back.splits.at("train")[0];
  EXPECT_EQ(e.checksum, h.checksum);
  EXPECT_EQ(e.tokens, 7u);
  EXPECT_EQ(back.split_tokens("train"), 7u);
  EXPECT_EQ(back.sources.at(0).skipped_lines, 1u);
  EXPECT_EQ(open_split_shards(dir.string(), back, "train").size(), 1u);
  EXPECT_THROW(open_split_shards(dir.string(), back, "val"), UserError);
}

TEST_F(Shard, ManifestProblemsAreNamed) {
  auto error_of_open = [&](const CorpusManifest& m) -> std::string {
    try {
      open_split_shards(dir.string(), m, "train");
      return "";
    } catch (const UserError& e) {
      return e.what();
    }
  };
  const ShardHeader h = write_shard("s.kvs", 50257);
  CorpusManifest m = manifest_for("s.kvs", h);
  m.splits["train"].push_back({"missing.kvs", 1, 1, 100, 0});
  EXPECT_NE(error_of_open(m).find(path("missing.kvs") + ": cannot open shard"), std::string::npos);

  m = manifest_for("s.kvs", h);
  m.splits["train"][0].checksum ^= 1;  // the shard was swapped for another
  EXPECT_NE(error_of_open(m).find(path("s.kvs") + ": does not match its manifest entry"), std::string::npos);

  auto error_of_read = [&](const std::string& text) -> std::string {
    std::ofstream(path("manifest.json")) << text;
    try {
      read_corpus_manifest(dir.string());
      return "";
    } catch (const UserError& e) {
      return e.what();
    }
  };
  const std::string file = path("manifest.json");
  EXPECT_NE(error_of_read("{").find(file + ": not valid JSON"), std::string::npos);
  EXPECT_EQ(error_of_read(R"({"format": "kervan-corpus", "version": 1})"), file + ": missing field tokenizer");
  EXPECT_EQ(error_of_read(R"({"format": "kervan-corpus", "version": 1, "tokenizer": {"name": "x", "vocab_size": -3}})"),
            file + ": field tokenizer.vocab_size must be a non-negative integer");
  EXPECT_EQ(error_of_read(R"({"format": "kervan-corpus", "version": 1,
      "tokenizer": {"name": "x", "vocab_size": 3, "eot_id": 2, "sha256": ""},
      "splits": {"train": [{"file": "../etc/passwd", "tokens": 1, "documents": 1, "bytes": 1, "checksum": "00"}]}})"),
            file + ": field splits.train[0].file must be a plain file name in the corpus folder");
  EXPECT_NE(error_of_read("").find(file + ": not valid JSON"), std::string::npos);
  fs::remove(file);
  try {
    read_corpus_manifest(dir.string());
    ADD_FAILURE() << "a folder without manifest.json opened as a corpus";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("did not finish"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kervan
