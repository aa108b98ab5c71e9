#include "datasets/corpus_writer.h"

#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <set>
#include <span>
#include <thread>

#include "core/error.h"
#include "datasets/atomic_file.h"
#include "datasets/llmc_token_file.h"
#include "datasets/token_shard.h"

namespace kervan {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kRecordDir = ".prepare";
constexpr size_t kBatchBytes = 1 << 20;  // text per batch handed to a worker

std::string unit_name(const char* split, size_t unit, size_t part) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s-%05zu-%05zu.kvs", split, unit, part);
  return buf;
}

std::string record_path(const std::string& dir, size_t unit) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "/%s/unit-%05zu.json", kRecordDir, unit);
  return dir + buf;
}

json shard_json(const ShardEntry& s) {
  return {{"file", s.file},
          {"tokens", s.tokens},
          {"documents", s.documents},
          {"bytes", s.bytes},
          {"checksum", checksum_hex(s.checksum)}};
}
ShardEntry shard_from_json(const json& j) {
  return {j.at("file").get<std::string>(), j.at("tokens").get<uint64_t>(), j.at("documents").get<uint64_t>(),
          j.at("bytes").get<uint64_t>(), std::stoull(j.at("checksum").get<std::string>(), nullptr, 16)};
}

// A batch of documents on its way reader -> worker -> writer.
struct Batch {
  size_t unit = 0;
  bool unit_end = false;
  std::vector<RawDocument> docs;
  std::vector<uint32_t> source;  // index into the sources, per document
  std::vector<uint8_t> val;
  uint64_t bytes_done = 0;  // input bytes read when the batch was cut (this run)
  // The worker's part:
  std::vector<uint8_t> status;  // DocStatus
  std::vector<uint32_t> tokens;
  std::vector<uint64_t> ends;  // end of each document's tokens
  std::exception_ptr error;
};

// Reader thread -> workers -> the writer, with batches in flight bounded and results consumed in
// the order they were read.
class Pipeline {
 public:
  explicit Pipeline(size_t max_in_flight) : max_in_flight_(max_in_flight) {}

  // Reader side. False when the pipeline was stopped.
  bool push(std::unique_ptr<Batch> b) {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return stopped_ || produced_ - consumed_ < max_in_flight_; });
    if (stopped_) return false;
    todo_.emplace_back(produced_++, std::move(b));
    cv_.notify_all();
    return true;
  }
  void close() {
    std::lock_guard lock(m_);
    closed_ = true;
    cv_.notify_all();
  }
  // Worker side: the next batch to process, or null at the end.
  std::pair<uint64_t, std::unique_ptr<Batch>> take() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return stopped_ || !todo_.empty() || closed_; });
    if (stopped_ || todo_.empty()) return {0, nullptr};
    auto item = std::move(todo_.front());
    todo_.pop_front();
    return item;
  }
  void done(uint64_t seq, std::unique_ptr<Batch> b) {
    std::lock_guard lock(m_);
    done_[seq] = std::move(b);
    cv_.notify_all();
  }
  // Writer side: batches in reading order; null at the end.
  std::unique_ptr<Batch> next() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return stopped_ || done_.contains(consumed_) || (closed_ && consumed_ == produced_); });
    if (stopped_ || !done_.contains(consumed_)) return nullptr;
    auto b = std::move(done_[consumed_]);
    done_.erase(consumed_++);
    cv_.notify_all();
    return b;
  }
  void stop() {
    std::lock_guard lock(m_);
    stopped_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  size_t max_in_flight_;
  uint64_t produced_ = 0, consumed_ = 0;
  bool closed_ = false, stopped_ = false;
  std::deque<std::pair<uint64_t, std::unique_ptr<Batch>>> todo_;
  std::map<uint64_t, std::unique_ptr<Batch>> done_;
};

}  // namespace

struct CorpusBuilder::UnitRecord {
  std::vector<ShardEntry> train, val;
  std::vector<SourceEntry> sources;
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

uint64_t document_hash(uint64_t seed, std::string_view key, uint64_t offset) {
  std::string buf(key);
  buf.push_back('\0');
  buf.append(reinterpret_cast<const char*>(&offset), sizeof(offset));
  return XXH3_64bits_withSeed(buf.data(), buf.size(), seed);
}

ValRule val_rule_for_fraction(double fraction) {
  if (!(fraction >= 0.0 && fraction < 1.0)) throw UserError("--val-fraction must be at least 0 and below 1");
  if (fraction == 0.0) return {};
  const double limit = std::ldexp(fraction, 64);
  return {false, limit >= 18446744073709551615.0 ? UINT64_MAX : static_cast<uint64_t>(limit)};
}

ValRule val_rule_for_count(const std::vector<TextSource>& sources, const TextReadOptions& read, uint64_t seed,
                           uint64_t n) {
  if (n == 0) return {};
  if (n > 50'000'000) throw UserError("--val-documents " + std::to_string(n) + " is too many (at most 50000000; use --val-fraction)");
  std::priority_queue<uint64_t> smallest;  // max-heap of the n smallest hashes
  uint64_t total = 0;
  RawDocument doc;
  for (const TextSource& s : sources) {
    DocumentReader reader(s, read);
    while (reader.next(doc)) {
      ++total;
      const uint64_t h = document_hash(seed, s.key, doc.offset);
      if (smallest.size() < n) {
        smallest.push(h);
      } else if (h < smallest.top()) {
        smallest.pop();
        smallest.push(h);
      }
    }
  }
  if (total <= n)
    throw UserError("--val-documents " + std::to_string(n) + " would take every document (the input has " +
                    std::to_string(total) + ")");
  return {false, smallest.top()};
}

CorpusBuilder::CorpusBuilder(CorpusOptions options, std::vector<TextSource> sources,
                             const DocumentTokenizer& tokenizer, ValRule val)
    : options_(std::move(options)), sources_(std::move(sources)), tokenizer_(tokenizer), val_(val) {
  if (options_.shard_tokens == 0) throw UserError("--shard-tokens must be positive");
  const uint64_t unit_bytes = options_.unit_bytes ? options_.unit_bytes : 4 * options_.shard_tokens;
  units_ = plan_work_units(sources_, unit_bytes);
}

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

bool CorpusBuilder::keep_unit(size_t unit, UnitRecord& record) const {
  const std::string path = record_path(options_.out_dir, unit);
  std::ifstream in(path);
  if (!in) return false;
  try {
    const json j = json::parse(in);
    if (j.at("fingerprint").get<std::string>() != fingerprint(unit)) return false;
    record = {};
    for (const json& s : j.at("train")) record.train.push_back(shard_from_json(s));
    for (const json& s : j.at("val")) record.val.push_back(shard_from_json(s));
    for (const json& s : j.at("sources"))
      record.sources.push_back({s.at("path").get<std::string>(), s.at("bytes").get<uint64_t>(),
                                s.at("documents").get<uint64_t>(), s.at("skipped_lines").get<uint64_t>()});
    for (const auto* list : {&record.train, &record.val})
      for (const ShardEntry& e : *list) {
        const TokenShard shard(options_.out_dir + "/" + e.file);
        if (shard.file_bytes() != e.bytes || shard.header().checksum != e.checksum ||
            shard.token_count() != e.tokens || shard.document_count() != e.documents)
          return false;
      }
  } catch (const std::exception&) {  // unreadable record, missing or damaged shard: redo the unit
    return false;
  }
  return true;
}

BuildStats CorpusBuilder::build(const std::vector<size_t>& unit_ids,
                                const std::function<void(const BuildProgress&)>& progress) {
  const std::string& dir = options_.out_dir;
  fs::create_directories(dir + "/" + kRecordDir);
  BuildStats stats;
  std::vector<size_t> todo;
  for (size_t u : unit_ids) {
    UnitRecord record;
    if (keep_unit(u, record)) {
      stats.kept_units++;
      stats.kept_shards += record.train.size() + record.val.size();
      stats.kept_bytes += units_[u].bytes;
    } else {
      todo.push_back(u);
    }
  }
  BuildProgress prog{stats.kept_bytes, 0, 0};
  progress(prog);
  if (todo.empty()) return stats;

  const int threads = std::max(1, options_.threads);
  Pipeline pipe(2 * static_cast<size_t>(threads) + 2);

  // Reader: the documents of the units to do, in order, cut into batches.
  auto read_all = [&] {
    uint64_t bytes_before = 0;
    try {
      for (size_t u : todo) {
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
  };

  auto work = [&] {
    BpeTokenizer::Cache cache;
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
  };

  std::vector<std::thread> pool;
  struct Joiner {
    Pipeline& pipe;
    std::vector<std::thread>& pool;
    ~Joiner() {
      pipe.stop();
      for (std::thread& t : pool) t.join();
    }
  } joiner{pipe, pool};
  pool.emplace_back(read_all);
  for (int i = 0; i < threads; ++i) pool.emplace_back(work);

  // Writer (this thread): the units' shards, in order.
  const uint64_t vocab = tokenizer_.identity().vocab_size;
  std::unique_ptr<TokenShardWriter> writer[2];
  std::string writer_file[2];
  size_t part[2] = {0, 0};
  size_t current = SIZE_MAX;
  UnitRecord record;
  auto close_shard = [&](int k) {
    if (!writer[k]) return;
    const ShardHeader h = writer[k]->finish();
    writer[k].reset();
    const uint64_t bytes = fs::file_size(dir + "/" + writer_file[k]);
    (k ? record.val : record.train).push_back({writer_file[k], h.token_count, h.document_count, bytes, h.checksum});
  };
  while (auto b = pipe.next()) {
    if (b->error) std::rethrow_exception(b->error);
    if (b->unit != current) {  // a new unit: forget any earlier record of it first
      current = b->unit;
      std::remove(record_path(dir, current).c_str());
      record = {};
      part[0] = part[1] = 0;
      const WorkUnit& unit = units_[current];
      for (size_t si = unit.first_source; si < unit.first_source + unit.source_count; ++si)
        record.sources.push_back({sources_[si].path, sources_[si].bytes, 0, 0});
    }
    const WorkUnit& unit = units_[current];
    uint64_t begin = 0;
    for (size_t i = 0; i < b->status.size(); ++i) {
      SourceEntry& src = record.sources[b->source[i] - unit.first_source];
      const uint64_t end = b->ends[i];
      if (b->status[i] == static_cast<uint8_t>(DocStatus::BadLine)) src.skipped_lines++;
      if (b->status[i] == static_cast<uint8_t>(DocStatus::Ok)) {
        src.documents++;
        const int k = b->val[i] ? 1 : 0;
        const uint64_t n = end - begin;
        if (writer[k] && writer[k]->document_count() > 0 && writer[k]->token_count() + n > options_.shard_tokens)
          close_shard(k);
        if (!writer[k]) {
          writer_file[k] = unit_name(k ? "val" : "train", current, part[k]++);
          writer[k] = std::make_unique<TokenShardWriter>(dir + "/" + writer_file[k], vocab);
        }
        writer[k]->add_document(std::span<const uint32_t>(b->tokens.data() + begin, n));
        stats.documents++;
        stats.tokens += n;
        prog.documents++;
        prog.tokens += n;
      }
      begin = end;
    }
    prog.bytes = stats.kept_bytes + b->bytes_done;
    if (b->unit_end) {
      close_shard(0);
      close_shard(1);
      json j = {{"fingerprint", fingerprint(current)},
                {"train", json::array()},
                {"val", json::array()},
                {"sources", json::array()}};
      for (const ShardEntry& s : record.train) j["train"].push_back(shard_json(s));
      for (const ShardEntry& s : record.val) j["val"].push_back(shard_json(s));
      for (const SourceEntry& s : record.sources) {
        j["sources"].push_back(
            {{"path", s.path}, {"bytes", s.bytes}, {"documents", s.documents}, {"skipped_lines", s.skipped_lines}});
        stats.skipped_lines += s.skipped_lines;
      }
      write_file_atomically(record_path(dir, current), j.dump(1) + "\n");
      stats.built_units++;
      stats.bytes += unit.bytes;
      // Test hook: die like a killed job once this many units are complete (tests/e2e/prepare.sh).
      if (const char* n = std::getenv("KERVAN_PREPARE_KILL_AFTER_UNITS"); n && stats.built_units == std::stoull(n))
        std::raise(SIGKILL);
    }
    progress(prog);
  }
  return stats;
}

CorpusManifest CorpusBuilder::manifest(const std::string& created_by) const {
  CorpusManifest m;
  m.tokenizer = tokenizer_.identity();
  m.created_by = created_by;
  m.splits["train"];
  m.splits["val"];
  for (size_t u = 0; u < units_.size(); ++u) {
    UnitRecord record;
    if (!keep_unit(u, record))
      throw UserError(record_path(options_.out_dir, u) + ": work unit " + std::to_string(u) +
                      " is missing or incomplete after the build (was the output folder changed meanwhile?)");
    m.splits["train"].insert(m.splits["train"].end(), record.train.begin(), record.train.end());
    m.splits["val"].insert(m.splits["val"].end(), record.val.begin(), record.val.end());
    m.sources.insert(m.sources.end(), record.sources.begin(), record.sources.end());
  }
  return m;
}

bool begin_corpus_dir(const std::string& dir, bool overwrite) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw UserError(dir + ": cannot create the output folder: " + ec.message());
  const std::string manifest = dir + "/" + CorpusManifest::kFileName;
  const bool complete = fs::exists(manifest);
  if (complete && !overwrite) return true;
  auto remove_matching = [&](const fs::path& folder, auto&& pred) {
    for (const auto& e : fs::directory_iterator(folder, ec))
      if (pred(e.path().filename().string())) fs::remove(e.path(), ec);
  };
  if (complete) {  // --overwrite: the old corpus goes
    fs::remove(manifest);
    remove_matching(dir, [](const std::string& n) {
      return (n.starts_with("train-") || n.starts_with("val-")) && n.ends_with(".kvs");
    });
    fs::remove_all(dir + "/" + kRecordDir, ec);
  }
  remove_matching(dir, [](const std::string& n) { return n.ends_with(".tmp"); });
  if (fs::is_directory(dir + "/" + kRecordDir))
    remove_matching(dir + "/" + kRecordDir, [](const std::string& n) { return n.ends_with(".tmp"); });
  return false;
}

void finish_corpus_dir(const std::string& dir, const CorpusManifest& manifest) {
  std::set<std::string> listed;
  for (const auto& [split, shards] : manifest.splits)
    for (const ShardEntry& s : shards) listed.insert(s.file);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if ((n.starts_with("train-") || n.starts_with("val-")) && n.ends_with(".kvs") && !listed.contains(n))
      fs::remove(e.path(), ec);
  }
  write_corpus_manifest(dir, manifest);
  fs::remove_all(dir + "/" + kRecordDir, ec);
}

CorpusManifest wrap_llmc_files(const std::vector<std::string>& files, const std::string& dir,
                               const TokenizerIdentity& tokenizer, const std::string& created_by) {
  CorpusManifest m;
  m.tokenizer = tokenizer;
  m.created_by = created_by;
  m.splits["train"];
  uint64_t documents = 0;
  std::vector<uint32_t> doc;
  for (size_t i = 0; i < files.size(); ++i) {
    const LlmcTokenFile in(files[i], static_cast<int64_t>(tokenizer.vocab_size));
    SourceEntry source{files[i], fs::file_size(files[i]), 0, 0};
    char name[32];
    std::snprintf(name, sizeof(name), "train-%05zu.kvs", i);
    TokenShardWriter w(dir + "/" + name, tokenizer.vocab_size);
    doc.clear();
    for (int64_t t = 0; t < in.size(); ++t) {
      doc.push_back(in.tokens()[t]);
      if (doc.back() == tokenizer.eot_id || t + 1 == in.size()) {
        w.add_document(doc);
        doc.clear();
      }
    }
    source.documents = w.document_count();
    documents += source.documents;
    const ShardHeader h = w.finish();
    m.splits["train"].push_back({name, h.token_count, h.document_count, fs::file_size(dir + "/" + name), h.checksum});
    m.sources.push_back(source);
  }
  if (documents == 0) throw UserError("the llm.c token files hold no tokens");
  finish_corpus_dir(dir, m);
  return m;
}

}  // namespace kervan
