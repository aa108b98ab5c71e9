#include "datasets/prepare/unit_record.h"

#include <cstdio>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>

#include "datasets/format/atomic_file.h"
#include "datasets/format/corpus_json.h"

namespace kervan {

namespace {

using nlohmann::json;

ShardEntry shard_from_json(const json& j) {
  return {j.at("file").get<std::string>(), j.at("tokens").get<uint64_t>(), j.at("documents").get<uint64_t>(),
          j.at("bytes").get<uint64_t>(), std::stoull(j.at("checksum").get<std::string>(), nullptr, 16)};
}

SourceEntry source_from_json(const json& j) {
  return {j.at("path").get<std::string>(), j.at("bytes").get<uint64_t>(), j.at("documents").get<uint64_t>(),
          j.at("skipped_lines").get<uint64_t>()};
}

}  // namespace

std::string unit_record_path(const std::string& dir, size_t unit) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "/%s/unit-%05zu.json", kUnitRecordDir, unit);
  return dir + buf;
}

void write_unit_record(const std::string& path, const std::string& fingerprint, const UnitRecord& record) {
  json j = {{"fingerprint", fingerprint}, {"train", json::array()}, {"val", json::array()}, {"sources", json::array()}};
  for (const ShardEntry& s : record.train) j["train"].push_back(shard_entry_json(s));
  for (const ShardEntry& s : record.val) j["val"].push_back(shard_entry_json(s));
  for (const SourceEntry& s : record.sources) j["sources"].push_back(source_entry_json(s));
  write_file_atomically(path, j.dump(1) + "\n");
}

std::optional<UnitRecord> read_unit_record(const std::string& path, const std::string& fingerprint) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    const json j = json::parse(in);
    if (j.at("fingerprint").get<std::string>() != fingerprint) return std::nullopt;
    UnitRecord record;
    for (const json& s : j.at("train")) record.train.push_back(shard_from_json(s));
    for (const json& s : j.at("val")) record.val.push_back(shard_from_json(s));
    for (const json& s : j.at("sources")) record.sources.push_back(source_from_json(s));
    return record;
  } catch (const std::exception&) {  // not JSON, or a field missing or mistyped
    return std::nullopt;
  }
}

}  // namespace kervan
