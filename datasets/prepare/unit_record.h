#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "datasets/format/corpus_manifest.h"

namespace kervan {

// The record `kervan prepare` writes when a work unit's shards are complete:
// DIR/.prepare/unit-UUUUU.json =
//   {"fingerprint": "...", "train": [shard entries], "val": [...], "sources": [source entries]}
// with the entries as in manifest.json. The fingerprint names what the unit was made from
// (CorpusBuilder decides it and whether the shards are still intact); the manifest is assembled
// from the records, which CorpusDir::finish then removes.
struct UnitRecord {
  std::vector<ShardEntry> train, val;
  std::vector<SourceEntry> sources;
};

constexpr const char* kUnitRecordDir = ".prepare";  // inside the corpus folder

std::string unit_record_path(const std::string& dir, size_t unit);
// Atomically (atomic_file.h).
void write_unit_record(const std::string& path, const std::string& fingerprint, const UnitRecord& record);
// The record, or nullopt when the file is missing, unreadable or has another fingerprint.
std::optional<UnitRecord> read_unit_record(const std::string& path, const std::string& fingerprint);

}  // namespace kervan
