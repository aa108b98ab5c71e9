#pragma once
#include <string>
#include <vector>

#include "datasets/format/corpus_manifest.h"

namespace kervan {

// `kervan prepare --from-llmc`: each llm.c token file becomes one train shard "train-NNNNN.kvs" in
// dir (CorpusDir::build_dir); documents end after each end-of-text token (a tail without one is a
// last document). Returns the manifest, with `created_by` and `request` (CorpusManifest), for
// CorpusDir::finish to write.
CorpusManifest wrap_llmc_files(const std::vector<std::string>& files, const std::string& dir,
                               const TokenizerIdentity& tokenizer, const std::string& created_by,
                               const std::string& request);

}  // namespace kervan
