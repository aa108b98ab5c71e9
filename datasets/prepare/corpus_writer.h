#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "datasets/prepare/corpus_dir.h"
#include "datasets/format/corpus_manifest.h"
#include "datasets/prepare/document_tokenizer.h"
#include "datasets/prepare/text_sources.h"
#include "datasets/prepare/val_split.h"

namespace kervan {

// Text sources -> a kervan corpus (token shards + manifest.json), deterministically, in parallel
// and resumably. The steps: CorpusDir::begin (corpus_dir.h), a ValRule (val_split.h), a
// CorpusBuilder that builds every unit (split over processes as the caller likes), then, in one
// process, manifest() and CorpusDir::finish.
//
// Work units. The sources (in the order discover_text_sources gives) are cut into work units:
// runs of consecutive files of at least `unit_bytes` bytes on disk (a file is never split). The cut
// depends only on the file sizes and options, so every run, thread count and MPI layout sees the
// same units. Unit u writes its documents, in input order, to its own shards
// (unit_shard_writer.h), and then a record DIR/.prepare/unit-UUUUU.json listing its shards and
// source counts (unit_record.h). The output is therefore byte-identical for any number of threads
// or processes.
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

struct BuildProgress {
  uint64_t bytes = 0;      // input bytes (on disk) done, kept units included
  uint64_t documents = 0;  // tokenized in this run
  uint64_t tokens = 0;
};

struct BuildStats {
  size_t kept_units = 0, kept_shards = 0, built_units = 0;
  uint64_t kept_bytes = 0, bytes = 0, documents = 0, tokens = 0, skipped_lines = 0;
};

template <class Item>
class OrderedPipeline;
class UnitShardWriter;
struct UnitRecord;

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

  // XXH3-64 of every unit's fingerprint: processes that build one corpus together (under a
  // coordinator) check that they agree on it.
  uint64_t plan_fingerprint() const;

 private:
  struct Batch;
  using BatchPipeline = OrderedPipeline<Batch>;

  std::string fingerprint(size_t unit) const;
  std::optional<UnitRecord> completed_unit(size_t unit) const;
  std::vector<size_t> units_to_build(const std::vector<size_t>& unit_ids, BuildStats& stats) const;
  void read_units(const std::vector<size_t>& unit_ids, BatchPipeline& pipe) const;
  void tokenize_batches(BatchPipeline& pipe) const;
  void write_units(BatchPipeline& pipe, BuildStats& stats, BuildProgress& progress,
                   const std::function<void(const BuildProgress&)>& report) const;
  UnitShardWriter start_unit(size_t unit) const;
  void finish_unit(size_t unit, UnitShardWriter& shards, BuildStats& stats) const;

  CorpusOptions options_;
  std::vector<TextSource> sources_;
  const DocumentTokenizer& tokenizer_;
  ValRule val_;
  std::vector<WorkUnit> units_;
};

}  // namespace kervan
