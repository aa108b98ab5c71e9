#include "datasets/prepare/corpus_writer.h"

#include <xxhash.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <thread>

#include "core/error.h"
#include "datasets/prepare/ordered_pipeline.h"
#include "datasets/prepare/unit_record.h"
#include "datasets/prepare/unit_shard_writer.h"

namespace kervan {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kBatchBytes = 1 << 20;  // text per batch handed to a worker

}  // namespace

// A batch of documents of one unit on its way reader -> worker -> writer.
struct CorpusBuilder::Batch {
  size_t unit = 0;
  bool unit_end = false;  // the unit's last batch
  std::vector<RawDocument> docs;
  std::vector<uint32_t> source;  // index into the sources, per document
  std::vector<uint8_t> val;
  uint64_t bytes_done = 0;  // input bytes read when the batch was cut (this run)
  // The worker's part:
  std::vector<uint8_t> status;  // DocStatus
  std::vector<uint32_t> tokens;
  std::vector<uint64_t> ends;  // end of each document's tokens
  std::exception_ptr error;    // from the reader or the worker: the writer rethrows it
};

std::vector<WorkUnit> plan_work_units(const std::vector<TextSource>& sources, uint64_t unit_bytes) {
  std::vector<WorkUnit> units;
  for (size_t i = 0; i < sources.size(); ++i) {
    if (units.empty() || units.back().bytes >= unit_bytes) units.push_back({i, 0, 0});
    units.back().source_count++;
    units.back().bytes += sources[i].bytes;
  }
  return units;
}

CorpusBuilder::CorpusBuilder(CorpusOptions options, std::vector<TextSource> sources,
                             const DocumentTokenizer& tokenizer, ValRule val)
    : options_(std::move(options)), sources_(std::move(sources)), tokenizer_(tokenizer), val_(val) {
  if (options_.shard_tokens == 0) throw UserError("--shard-tokens must be positive");
  const uint64_t unit_bytes = options_.unit_bytes ? options_.unit_bytes : 4 * options_.shard_tokens;
  units_ = plan_work_units(sources_, unit_bytes);
}

// Everything a unit's shards depend on; a record with another fingerprint is out of date.
std::string CorpusBuilder::fingerprint(size_t unit) const {
  const TokenizerIdentity& t = tokenizer_.identity();
  json j = {{"version", 1},
            {"tokenizer", {t.name, t.vocab_size, t.eot_id, t.sha256}},
            {"delimiter", options_.read.doc_delimiter},
            {"text_field", options_.read.text_field},
            {"skip_bad_lines", options_.read.skip_bad_lines},
            {"val", {val_.none, val_.max_hash}},
            {"seed", options_.seed},
            {"shard_tokens", options_.shard_tokens},
            {"unit", unit},
            {"sources", json::array()}};
  const WorkUnit& u = units_[unit];
  for (size_t i = u.first_source; i < u.first_source + u.source_count; ++i)
    j["sources"].push_back({sources_[i].path, sources_[i].key, sources_[i].bytes, sources_[i].mtime_ns});
  const std::string text = j.dump();
  return checksum_hex(XXH3_64bits(text.data(), text.size()));
}

// The unit's record when an earlier run completed the unit with these inputs and options and
// its shards are still intact; nullopt when the unit must be made (again).
std::optional<UnitRecord> CorpusBuilder::completed_unit(size_t unit) const {
  std::optional<UnitRecord> record =
      read_unit_record(unit_record_path(options_.out_dir, unit), fingerprint(unit));
  if (!record) return std::nullopt;
  try {
    for (const auto* list : {&record->train, &record->val})
      for (const ShardEntry& e : *list) {
        const TokenShard shard(options_.out_dir + "/" + e.file);
        if (shard.file_bytes() != e.bytes || shard.header().checksum != e.checksum ||
            shard.token_count() != e.tokens || shard.document_count() != e.documents)
          return std::nullopt;
        shard.verify();  // the body too: a byte damaged since the earlier run means the unit is redone
      }
  } catch (const std::exception&) {  // missing or damaged shard: redo the unit
    return std::nullopt;
  }
  return record;
}

BuildStats CorpusBuilder::build(const std::vector<size_t>& unit_ids,
                                const std::function<void(const BuildProgress&)>& progress) {
  // (CorpusDir::begin made both; never the folder itself again here: under mpirun a rank must not
  // recreate a folder that rank 0 has just removed after a failure.)
  std::error_code ec;
  fs::create_directory(options_.out_dir + "/" + kUnitRecordDir, ec);
  BuildStats stats;
  const std::vector<size_t> to_build = units_to_build(unit_ids, stats);
  BuildProgress prog{stats.kept_bytes, 0, 0};
  progress(prog);
  if (to_build.empty()) return stats;

  // One reader and `threads` tokenizers feed this thread, which writes the shards in input order.
  const int threads = std::max(1, options_.threads);
  BatchPipeline pipe(2 * static_cast<size_t>(threads) + 2);
  std::vector<std::thread> pool;
  struct StopAndJoin {  // also when the writer throws: the other threads must end before pipe goes
    BatchPipeline& pipe;
    std::vector<std::thread>& pool;
    ~StopAndJoin() {
      pipe.stop();
      for (std::thread& t : pool) t.join();
    }
  } stop_and_join{pipe, pool};
  pool.emplace_back([&] { read_units(to_build, pipe); });
  for (int i = 0; i < threads; ++i) pool.emplace_back([&] { tokenize_batches(pipe); });
  write_units(pipe, stats, prog, progress);
  return stats;
}

// Counts the units an earlier run completed into stats and returns the others.
std::vector<size_t> CorpusBuilder::units_to_build(const std::vector<size_t>& unit_ids,
                                                  BuildStats& stats) const {
  std::vector<size_t> to_build;
  for (size_t u : unit_ids) {
    if (const std::optional<UnitRecord> record = completed_unit(u)) {
      stats.kept_units++;
      stats.kept_shards += record->train.size() + record->val.size();
      stats.kept_bytes += units_[u].bytes;
    } else {
      to_build.push_back(u);
    }
  }
  return to_build;
}

// The reader thread: the documents of the units, in order, cut into batches of about
// kBatchBytes, each unit ending with a unit_end batch. An error travels as a batch too.
void CorpusBuilder::read_units(const std::vector<size_t>& unit_ids, BatchPipeline& pipe) const {
  uint64_t bytes_before = 0;
  try {
    for (size_t u : unit_ids) {
      const WorkUnit& unit = units_[u];
      auto batch = std::make_unique<Batch>();
      batch->unit = u;
      size_t batch_bytes = 0;
      for (size_t si = unit.first_source; si < unit.first_source + unit.source_count; ++si) {
        const TextSource& src = sources_[si];
        RawDocumentReader reader(src, options_.read.doc_delimiter);
        RawDocument doc;
        while (reader.next(doc)) {
          batch_bytes += doc.text.size() + 64;
          batch->val.push_back(val_.is_val(document_hash(options_.seed, src.key, doc.offset)));
          batch->source.push_back(static_cast<uint32_t>(si));
          batch->docs.push_back(std::move(doc));
          doc = {};
          if (batch_bytes >= kBatchBytes) {
            batch->bytes_done = bytes_before + reader.raw_bytes();
            if (!pipe.push(std::move(batch))) return;
            batch = std::make_unique<Batch>();
            batch->unit = u;
            batch_bytes = 0;
          }
        }
        bytes_before += src.bytes;
      }
      batch->unit_end = true;
      batch->bytes_done = bytes_before;
      if (!pipe.push(std::move(batch))) return;
    }
  } catch (...) {
    auto b = std::make_unique<Batch>();
    b->error = std::current_exception();
    pipe.push(std::move(b));
  }
  pipe.close();
}

// A worker thread: extracts each document's text (JSON parsing for .jsonl) and tokenizes it.
void CorpusBuilder::tokenize_batches(BatchPipeline& pipe) const {
  BpeTokenizer::Cache cache;  // one per thread, across all its documents
  for (;;) {
    auto [seq, b] = pipe.take();
    if (!b) return;
    if (!b->error) {
      try {
        b->status.resize(b->docs.size());
        b->ends.resize(b->docs.size());
        for (size_t i = 0; i < b->docs.size(); ++i) {
          const DocStatus s = document_text(sources_[b->source[i]], options_.read, b->docs[i]);
          b->status[i] = static_cast<uint8_t>(s);
          if (s == DocStatus::Ok) tokenizer_.encode(b->docs[i].text, cache, b->tokens);
          b->ends[i] = b->tokens.size();
          b->docs[i].text = std::string();  // free the text early
        }
      } catch (...) {
        b->error = std::current_exception();
      }
    }
    pipe.done(seq, std::move(b));
  }
}

// The writer (the calling thread): the batches in input order into each unit's shards.
void CorpusBuilder::write_units(BatchPipeline& pipe, BuildStats& stats, BuildProgress& progress,
                                const std::function<void(const BuildProgress&)>& report) const {
  std::optional<UnitShardWriter> shards;  // of the unit being written
  while (auto b = pipe.next()) {
    if (b->error) std::rethrow_exception(b->error);
    if (!shards) shards = start_unit(b->unit);
    const size_t first_source = units_[b->unit].first_source;
    uint64_t begin = 0;
    for (size_t i = 0; i < b->status.size(); ++i) {
      const size_t source = b->source[i] - first_source;
      const uint64_t end = b->ends[i];
      if (b->status[i] == static_cast<uint8_t>(DocStatus::BadLine)) shards->count_skipped_line(source);
      if (b->status[i] == static_cast<uint8_t>(DocStatus::Ok)) {
        const uint64_t n = end - begin;
        shards->add_document(source, b->val[i], std::span<const uint32_t>(b->tokens.data() + begin, n));
        stats.documents++;
        stats.tokens += n;
        progress.documents++;
        progress.tokens += n;
      }
      begin = end;
    }
    progress.bytes = stats.kept_bytes + b->bytes_done;
    if (b->unit_end) {
      finish_unit(b->unit, *shards, stats);
      shards.reset();
    }
    report(progress);
  }
}

// Before a unit's first shard: its old record goes, so that a crash meanwhile cannot keep the unit.
UnitShardWriter CorpusBuilder::start_unit(size_t unit) const {
  std::remove(unit_record_path(options_.out_dir, unit).c_str());
  const WorkUnit& u = units_[unit];
  std::vector<SourceEntry> sources;
  for (size_t si = u.first_source; si < u.first_source + u.source_count; ++si)
    sources.push_back({sources_[si].path, sources_[si].bytes, 0, 0});
  return UnitShardWriter(options_.out_dir, unit, tokenizer_.identity().vocab_size, options_.shard_tokens,
                         std::move(sources));
}

// After a unit's last document: completes its shards and writes its record.
void CorpusBuilder::finish_unit(size_t unit, UnitShardWriter& shards, BuildStats& stats) const {
  const UnitRecord record = shards.finish();
  for (const SourceEntry& s : record.sources) stats.skipped_lines += s.skipped_lines;
  write_unit_record(unit_record_path(options_.out_dir, unit), fingerprint(unit), record);
  stats.built_units++;
  stats.bytes += units_[unit].bytes;
  // Test hook: die like a killed job once this many units are complete (tests/e2e/prepare.sh).
  if (const char* n = std::getenv("KERVAN_PREPARE_KILL_AFTER_UNITS");
      n && stats.built_units == std::stoull(n))
    std::raise(SIGKILL);
}

uint64_t CorpusBuilder::plan_fingerprint() const {
  std::string all;
  for (size_t u = 0; u < units_.size(); ++u) all += fingerprint(u);
  return XXH3_64bits(all.data(), all.size());
}

CorpusManifest CorpusBuilder::manifest(const std::string& created_by) const {
  CorpusManifest m;
  m.tokenizer = tokenizer_.identity();
  m.created_by = created_by;
  m.splits["train"];
  m.splits["val"];
  for (size_t u = 0; u < units_.size(); ++u) {
    const std::optional<UnitRecord> record = completed_unit(u);
    if (!record)
      throw UserError(unit_record_path(options_.out_dir, u) + ": work unit " + std::to_string(u) +
                      " is missing or incomplete after the build (was the output folder changed meanwhile?)");
    m.splits["train"].insert(m.splits["train"].end(), record->train.begin(), record->train.end());
    m.splits["val"].insert(m.splits["val"].end(), record->val.begin(), record->val.end());
    m.sources.insert(m.sources.end(), record->sources.begin(), record->sources.end());
  }
  return m;
}

}  // namespace kervan
