#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "datasets/corpus_manifest.h"
#include "datasets/document_tokenizer.h"
#include "datasets/text_sources.h"

namespace kervan {

// Text sources -> a kervan corpus (token shards + manifest.json), deterministically, in parallel
// and resumably.
//
// Work units. The sources (in the order discover_text_sources gives) are cut into work units:
// runs of consecutive files of at least `unit_bytes` bytes on disk (a file is never split). The cut
// depends only on the file sizes and options, so every run, thread count and MPI layout sees the
// same units. Unit u writes its documents, in input order, to its own shards
// "train-UUUUU-PPPPP.kvs" / "val-UUUUU-PPPPP.kvs" (P counts the shards the unit filled: a new one
// starts before a document that would take the shard past shard_tokens; documents are never
// split), and then a record DIR/.prepare/unit-UUUUU.json listing its shards and source counts.
// The output is therefore byte-identical for any number of threads or processes.
//
// Validation split. Document d of source s goes to "val" when
// XXH3-64(seed, s.key + '\0' + offset of d in the decompressed file) is at most a limit: for a
// fraction F, F x 2^64; for a count N, the N-th smallest hash of the corpus (found by a first pass
// that reads and splits every file without tokenizing). The choice depends on neither the order
// nor the number of workers, nor on where the corpus lies (keys are relative paths).
//
// Resume. A unit whose record exists, was made with the same options, tokenizer and source files
// (path, size, mtime), and whose shards are present with the recorded size and checksum is kept
// without reading its input again; every other unit is redone. Shards are written through
// "*.tmp" files renamed into place when complete. manifest.json is written last.
struct CorpusOptions {
  std::string out_dir;
  TextReadOptions read;
  double val_fraction = 0.005;
  std::optional<uint64_t> val_documents;  // instead of val_fraction
  uint64_t shard_tokens = 100'000'000;
  uint64_t seed = 0;
  int threads = 1;
  uint64_t unit_bytes = 0;  // 0: 4 x shard_tokens (about one full train shard of English text)
};

struct WorkUnit {
  size_t first_source = 0, source_count = 0;
  uint64_t bytes = 0;
};
std::vector<WorkUnit> plan_work_units(const std::vector<TextSource>& sources, uint64_t unit_bytes);

uint64_t document_hash(uint64_t seed, std::string_view key, uint64_t offset);

// Which documents go to "val": hash <= max_hash, unless none.
struct ValRule {
  bool none = true;
  uint64_t max_hash = 0;
  bool is_val(uint64_t hash) const { return !none && hash <= max_hash; }
};
ValRule val_rule_for_fraction(double fraction);
// The first pass for a document count: reads every source (UserError for bad input, like the
// second pass) and keeps the n smallest hashes.
ValRule val_rule_for_count(const std::vector<TextSource>& sources, const TextReadOptions& read, uint64_t seed,
                           uint64_t n);

struct BuildProgress {
  uint64_t bytes = 0;      // input bytes (on disk) done, kept units included
  uint64_t documents = 0;  // tokenized in this run
  uint64_t tokens = 0;
};

struct BuildStats {
  size_t kept_units = 0, kept_shards = 0, built_units = 0;
  uint64_t kept_bytes = 0, bytes = 0, documents = 0, tokens = 0, skipped_lines = 0;
};

class CorpusBuilder {
 public:
  CorpusBuilder(CorpusOptions options, std::vector<TextSource> sources, const DocumentTokenizer& tokenizer,
                ValRule val);

  const std::vector<WorkUnit>& units() const { return units_; }
  const std::vector<TextSource>& sources() const { return sources_; }

  // Makes the given units (indexes into units(), ascending): keeps those an earlier run completed
  // and tokenizes the others on options.threads threads. `progress` is called now and then from
  // the calling thread.
  BuildStats build(const std::vector<size_t>& unit_ids, const std::function<void(const BuildProgress&)>& progress);

  // The manifest of the complete corpus from every unit's record (all units must be built).
  CorpusManifest manifest(const std::string& created_by) const;

 private:
  struct UnitRecord;
  std::string fingerprint(size_t unit) const;
  bool keep_unit(size_t unit, UnitRecord& record) const;

  CorpusOptions options_;
  std::vector<TextSource> sources_;
  const DocumentTokenizer& tokenizer_;
  ValRule val_;
  std::vector<WorkUnit> units_;
};

// Before building (one process): returns true, changing nothing, when dir already holds a
// complete corpus (manifest.json) and !overwrite; with overwrite, removes that corpus's manifest,
// shards and records. Always creates dir and removes stale "*.tmp" files.
bool begin_corpus_dir(const std::string& dir, bool overwrite);
// After building (one process): removes shard files of ours ("train-*.kvs", "val-*.kvs") that the
// manifest does not list (left by an earlier run with other inputs), writes the manifest, then
// removes the unit records.
void finish_corpus_dir(const std::string& dir, const CorpusManifest& manifest);

// `kervan prepare --from-llmc`: each llm.c token file becomes one train shard
// "train-NNNNN.kvs"; documents end after each end-of-text token (a tail without one is a last
// document). Returns the manifest it wrote.
CorpusManifest wrap_llmc_files(const std::vector<std::string>& files, const std::string& dir,
                               const TokenizerIdentity& tokenizer, const std::string& created_by);

}  // namespace kervan
