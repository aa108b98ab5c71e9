#pragma once
#include <string>

#include "datasets/format/corpus_manifest.h"

namespace kervan {

// The output folder of `kervan prepare`, before and after the build; each is called by one
// process only. manifest.json marks a complete corpus (corpus_manifest.h).

// Returns true, changing nothing, when dir already holds a complete corpus and !overwrite; with
// overwrite, removes that corpus's manifest, shards and unit records. Always creates dir and
// removes stale "*.tmp" files (of shards and records an interrupted run left).
bool begin_corpus_dir(const std::string& dir, bool overwrite);
// Removes shard files of ours ("train-*.kvs", "val-*.kvs") that the manifest does not list (left
// by an earlier run with other inputs), writes the manifest, then removes the unit records.
void finish_corpus_dir(const std::string& dir, const CorpusManifest& manifest);

}  // namespace kervan
