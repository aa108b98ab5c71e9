#pragma once
#include <string>

#include "datasets/format/corpus_manifest.h"

namespace kervan {

// The output folder of `kervan prepare`, before and after the build; each is called by one
// process only. manifest.json marks a complete corpus (corpus_manifest.h).

// kervan writes only into a folder it made: one that is new or empty, or that carries its marker
// (manifest.json of a complete corpus, or .prepare/ of an unfinished prepare); any other folder is
// refused (UserError) and left as it is.
//
// Returns true, changing nothing, when dir holds a complete corpus made for `request` (see
// CorpusManifest::request) and !overwrite; a complete corpus made for another request is refused
// unless overwrite, which removes its manifest and the shards it lists. Otherwise creates dir and
// the .prepare/ marker, and removes the temporaries an interrupted run of kervan left there.
bool begin_corpus_dir(const std::string& dir, bool overwrite, const std::string& request);
// Removes shard files of ours ("train-*.kvs", "val-*.kvs", in this kervan-made folder) that the
// manifest does not list (left by an interrupted run), writes the manifest, then removes the
// unit records (and with them the .prepare/ marker: manifest.json marks the folder now).
void finish_corpus_dir(const std::string& dir, const CorpusManifest& manifest);

}  // namespace kervan
