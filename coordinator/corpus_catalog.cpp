#include "coordinator/corpus_catalog.h"

#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>

#include "core/error.h"

namespace kervan {

namespace v1 = coordinator::v1;

// The most one FetchRequest may ask for: enough for a large batch of windows in one stream,
// small enough that one request cannot occupy the server for long.
constexpr uint64_t kMaxFetchBytes = 64ull << 20;
constexpr uint32_t kMaxFetchRanges = 4096;

CorpusSpec CorpusSpec::parse(const std::string& arg) {
  CorpusSpec spec;
  const size_t eq = arg.find('=');
  if (eq != std::string::npos && eq > 0 && arg.find('/') > eq) {
    spec.name = arg.substr(0, eq);
    spec.dir = arg.substr(eq + 1);
  } else {
    spec.dir = arg;
    std::filesystem::path p(arg);
    spec.name = (p.has_filename() ? p.filename() : p.parent_path().filename()).string();
  }
  if (spec.dir.empty() || spec.name.empty() || spec.name == "." || spec.name == "..")
    throw UserError("--corpus " + arg + ": expected DIR or NAME=DIR");
  return spec;
}

v1::CorpusInfo corpus_info(const std::string& name, const CorpusManifest& manifest) {
  v1::CorpusInfo info;
  info.set_name(name);
  auto* t = info.mutable_tokenizer();
  t->set_name(manifest.tokenizer.name);
  t->set_vocab_size(manifest.tokenizer.vocab_size);
  t->set_eot_id(manifest.tokenizer.eot_id);
  t->set_sha256(manifest.tokenizer.sha256);
  XXH3_state_t* h = XXH3_createState();
  XXH3_64bits_reset(h);
  XXH3_64bits_update(h, name.data(), name.size() + 1);
  const uint32_t token_bytes = token_bytes_for_vocab(manifest.tokenizer.vocab_size);
  for (const auto& [split_name, shards] : manifest.splits) {
    if (shards.empty()) continue;
    v1::SplitInfo* split = info.add_splits();
    split->set_name(split_name);
    XXH3_64bits_update(h, split_name.data(), split_name.size() + 1);
    for (const ShardEntry& e : shards) {
      v1::ShardInfo* s = split->add_shards();
      s->set_file(e.file);
      s->set_tokens(e.tokens);
      s->set_documents(e.documents);
      s->set_bytes(e.bytes);
      s->set_checksum(e.checksum);
      s->set_token_bytes(token_bytes);
      XXH3_64bits_update(h, e.file.data(), e.file.size() + 1);
      XXH3_64bits_update(h, &e.checksum, sizeof e.checksum);
    }
  }
  info.set_fingerprint(XXH3_64bits_digest(h));
  XXH3_freeState(h);
  return info;
}

CorpusCatalog::CorpusCatalog(const std::vector<CorpusSpec>& specs) {
  std::set<std::string> names;
  // Freed also when a corpus is refused below (a UserError leaves the constructor).
  const std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), XXH3_freeState);
  XXH3_state_t* h = state.get();
  XXH3_64bits_reset(h);
  for (const CorpusSpec& spec : specs) {
    if (!names.insert(spec.name).second)
      throw UserError("--corpus " + spec.dir + ": another corpus is already served as '" + spec.name +
                      "' (name them: --corpus NAME=DIR)");
    if (!std::filesystem::is_directory(spec.dir)) throw UserError(spec.dir + ": no such corpus folder");
    const auto t0 = std::chrono::steady_clock::now();
    Corpus c{spec.name, spec.dir, read_corpus_manifest(spec.dir), {}};
    uint64_t bytes = 0;
    size_t shard_count = 0;
    for (const auto& [split_name, shards] : c.manifest.splits) {
      if (shards.empty()) continue;
      // Opens and verifies each shard against the manifest and its own checksum (UserError naming it).
      c.splits.push_back({split_name, open_split_shards(spec.dir, c.manifest, split_name)});
      for (const auto& s : c.splits.back().shards) bytes += s->file_bytes();
      shard_count += c.splits.back().shards.size();
    }
    if (c.splits.empty()) throw UserError(spec.dir + ": the corpus has no shards");
    *manifest_.add_corpora() = corpus_info(spec.name, c.manifest);
    const uint64_t fp = manifest_.corpora().rbegin()->fingerprint();
    XXH3_64bits_update(h, &fp, sizeof fp);
    spdlog::info("corpus '{}' ({}): {} shards, {:.1f} MB verified in {:.1f} s", spec.name, spec.dir,
                 shard_count, bytes / 1e6,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    corpora_.push_back(std::move(c));
  }
  fingerprint_ = XXH3_64bits_digest(h);
  manifest_.set_max_fetch_bytes(kMaxFetchBytes);
  manifest_.set_max_fetch_ranges(kMaxFetchRanges);
  manifest_bytes_ = manifest_.SerializeAsString();
}

const CorpusCatalog::Split* CorpusCatalog::split(uint32_t corpus, const std::string& name) const {
  if (corpus >= corpora_.size()) return nullptr;
  for (const Split& s : corpora_[corpus].splits)
    if (s.name == name) return &s;
  return nullptr;
}

uint64_t CorpusCatalog::train_tokens() const {
  uint64_t n = 0;
  for (const Corpus& c : corpora_) n += c.manifest.split_tokens("train");
  return n;
}

}  // namespace kervan
