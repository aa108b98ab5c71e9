#include "datasets/format/corpus_manifest.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "datasets/format/atomic_file.h"
#include "datasets/format/corpus_json.h"

namespace kervan {

namespace {

using nlohmann::json;

std::string manifest_path(const std::string& dir) {
  return dir + "/" + CorpusManifest::kFileName;
}

// Reads fields with errors that name the file and the field's path in the document.
struct FieldReader {
  const std::string& file;

  const json& at(const json& obj, const std::string& where, const char* key) const {
    if (!obj.is_object() || !obj.contains(key)) throw UserError(file + ": missing field " + where + key);
    return obj.at(key);
  }
  std::string str(const json& obj, const std::string& where, const char* key) const {
    const json& v = at(obj, where, key);
    if (!v.is_string()) throw UserError(file + ": field " + where + key + " must be a string");
    return v.get<std::string>();
  }
  uint64_t u64(const json& obj, const std::string& where, const char* key) const {
    const json& v = at(obj, where, key);
    if (!v.is_number_unsigned())
      throw UserError(file + ": field " + where + key + " must be a non-negative integer");
    return v.get<uint64_t>();
  }
};

}  // namespace

std::string checksum_hex(uint64_t checksum) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(checksum));
  return buf;
}

json shard_entry_json(const ShardEntry& s) {
  return {{"file", s.file},
          {"tokens", s.tokens},
          {"documents", s.documents},
          {"bytes", s.bytes},
          {"checksum", checksum_hex(s.checksum)}};
}

json source_entry_json(const SourceEntry& s) {
  return {
      {"path", s.path}, {"bytes", s.bytes}, {"documents", s.documents}, {"skipped_lines", s.skipped_lines}};
}

uint64_t CorpusManifest::split_tokens(const std::string& split) const {
  uint64_t n = 0;
  if (auto it = splits.find(split); it != splits.end())
    for (const ShardEntry& s : it->second) n += s.tokens;
  return n;
}

uint64_t CorpusManifest::documents() const {
  uint64_t n = 0;
  for (const auto& [split, shards] : splits)
    for (const ShardEntry& s : shards) n += s.documents;
  return n;
}

uint64_t CorpusManifest::source_bytes() const {
  uint64_t n = 0;
  for (const SourceEntry& s : sources) n += s.bytes;
  return n;
}

uint64_t CorpusManifest::skipped_lines() const {
  uint64_t n = 0;
  for (const SourceEntry& s : sources) n += s.skipped_lines;
  return n;
}

// What a well-formed manifest promises beyond its fields' types: a token id range that holds the
// end-of-text token, at least one shard, and every shard file listed once.
void check_manifest(const std::string& file, const CorpusManifest& m) {
  if (m.tokenizer.vocab_size == 0 || m.tokenizer.vocab_size > (uint64_t{1} << 32))
    throw UserError(file + ": tokenizer.vocab_size (" + std::to_string(m.tokenizer.vocab_size) +
                    ") must lie in [1, 2^32]");
  if (m.tokenizer.eot_id >= m.tokenizer.vocab_size)
    throw UserError(file + ": tokenizer.eot_id (" + std::to_string(m.tokenizer.eot_id) +
                    ") is outside the vocabulary (vocab_size " + std::to_string(m.tokenizer.vocab_size) +
                    ")");
  std::map<std::string, std::string> seen;  // shard file -> where it is listed
  for (const auto& [name, shards] : m.splits)
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string where = "splits." + name + "[" + std::to_string(i) + "]";
      const auto [it, fresh] = seen.emplace(shards[i].file, where);
      if (!fresh)
        throw UserError(file + ": shard " + shards[i].file + " is listed twice (" + it->second + " and " +
                        where + ")");
    }
  if (seen.empty()) throw UserError(file + ": the manifest lists no shards (an empty or damaged corpus)");
}

CorpusManifest read_corpus_manifest(const std::string& dir) {
  const std::string file = manifest_path(dir);
  std::ifstream in(file);
  if (!in)
    throw UserError(
        file + ": cannot open corpus manifest (not a kervan corpus, or `kervan prepare` did not finish): " +
        std::strerror(errno));
  json doc;
  try {
    doc = json::parse(in);
  } catch (const json::exception& e) {
    throw UserError(file + ": not valid JSON: " + e.what());
  }
  const FieldReader r{file};
  if (r.str(doc, "", "format") != "kervan-corpus")
    throw UserError(file + ": field format must be \"kervan-corpus\"");
  if (r.u64(doc, "", "version") != CorpusManifest::kVersion)
    throw UserError(file + ": unsupported manifest version (this kervan reads version 1)");

  CorpusManifest m;
  const json& tok = r.at(doc, "", "tokenizer");
  m.tokenizer.name = r.str(tok, "tokenizer.", "name");
  m.tokenizer.vocab_size = r.u64(tok, "tokenizer.", "vocab_size");
  m.tokenizer.eot_id = r.u64(tok, "tokenizer.", "eot_id");
  m.tokenizer.sha256 = r.str(tok, "tokenizer.", "sha256");

  const json& splits = r.at(doc, "", "splits");
  if (!splits.is_object()) throw UserError(file + ": field splits must be an object");
  for (const auto& [name, shards] : splits.items()) {
    if (!shards.is_array()) throw UserError(file + ": field splits." + name + " must be a list");
    std::vector<ShardEntry>& out = m.splits[name];
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string where = "splits." + name + "[" + std::to_string(i) + "].";
      ShardEntry s;
      s.file = r.str(shards[i], where, "file");
      if (s.file.empty() || s.file.find('/') != std::string::npos || s.file.starts_with("."))
        throw UserError(file + ": field " + where + "file must be a plain file name in the corpus folder");
      s.tokens = r.u64(shards[i], where, "tokens");
      s.documents = r.u64(shards[i], where, "documents");
      s.bytes = r.u64(shards[i], where, "bytes");
      const std::string sum = r.str(shards[i], where, "checksum");
      const auto [end, ec] = std::from_chars(sum.data(), sum.data() + sum.size(), s.checksum, 16);
      if (ec != std::errc() || end != sum.data() + sum.size() || sum.size() != 16)
        throw UserError(file + ": field " + where + "checksum must be 16 hex digits");
      out.push_back(std::move(s));
    }
  }
  if (doc.contains("sources")) {
    const json& sources = doc.at("sources");
    if (!sources.is_array()) throw UserError(file + ": field sources must be a list");
    for (size_t i = 0; i < sources.size(); ++i) {
      const std::string where = "sources[" + std::to_string(i) + "].";
      m.sources.push_back({r.str(sources[i], where, "path"), r.u64(sources[i], where, "bytes"),
                           r.u64(sources[i], where, "documents"), r.u64(sources[i], where, "skipped_lines")});
    }
  }
  if (doc.contains("created_by")) m.created_by = r.str(doc, "", "created_by");
  if (doc.contains("request")) m.request = r.str(doc, "", "request");
  check_manifest(file, m);
  return m;
}

void write_corpus_manifest(const std::string& dir, const CorpusManifest& m) {
  json doc = {{"format", "kervan-corpus"},
              {"version", CorpusManifest::kVersion},
              {"tokenizer",
               {{"name", m.tokenizer.name},
                {"vocab_size", m.tokenizer.vocab_size},
                {"eot_id", m.tokenizer.eot_id},
                {"sha256", m.tokenizer.sha256}}},
              {"splits", json::object()},
              {"sources", json::array()},
              {"created_by", m.created_by},
              {"request", m.request}};
  for (const auto& [name, shards] : m.splits) {
    json list = json::array();
    for (const ShardEntry& s : shards) list.push_back(shard_entry_json(s));
    doc["splits"][name] = std::move(list);
  }
  for (const SourceEntry& s : m.sources) doc["sources"].push_back(source_entry_json(s));

  write_file_atomically(manifest_path(dir), doc.dump(1) + "\n");
}

std::vector<std::unique_ptr<TokenShard>> open_split_shards(const std::string& dir, const CorpusManifest& m,
                                                           const std::string& split, Verify verify) {
  const auto it = m.splits.find(split);
  if (it == m.splits.end() || it->second.empty())
    throw UserError(manifest_path(dir) + ": the corpus has no '" + split + "' split");
  std::vector<std::unique_ptr<TokenShard>> shards;
  for (const ShardEntry& e : it->second) {
    auto shard = std::make_unique<TokenShard>(dir + "/" + e.file);  // missing, bad magic, size mismatch
    const ShardHeader& h = shard->header();
    if (h.token_count != e.tokens || h.document_count != e.documents || shard->file_bytes() != e.bytes ||
        h.checksum != e.checksum)
      throw UserError(shard->path() +
                      ": does not match its manifest entry (counts, size or checksum differ; the shard "
                      "was replaced or the corpus is corrupt)");
    if (h.vocab_size != m.tokenizer.vocab_size)
      throw UserError(shard->path() + ": vocabulary size " + std::to_string(h.vocab_size) +
                      " differs from the manifest's tokenizer (" + std::to_string(m.tokenizer.vocab_size) +
                      ")");
    if (verify == Verify::Full) shard->verify();  // checksum over the body: catches flipped bytes
    shards.push_back(std::move(shard));
  }
  return shards;
}

}  // namespace kervan
