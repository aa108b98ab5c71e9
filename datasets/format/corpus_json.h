#pragma once
#include <nlohmann/json_fwd.hpp>

#include "datasets/format/corpus_manifest.h"

namespace kervan {

// The JSON form of a shard entry and a source entry, as manifest.json (corpus_manifest.h) writes
// them; prepare's unit records (unit_record.h) list their shards and sources the same way.
nlohmann::json shard_entry_json(const ShardEntry& shard);
nlohmann::json source_entry_json(const SourceEntry& source);

}  // namespace kervan
