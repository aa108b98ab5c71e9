#pragma once
#include <string>
#include <vector>

#include "datasets/format/corpus_manifest.h"

namespace kervan {

// `kervan prepare --from-llmc`: each llm.c token file becomes one train shard "train-NNNNN.kvs" of
// a corpus in dir (prepared with begin_corpus_dir); documents end after each end-of-text token (a
// tail without one is a last document). Writes the manifest (finish_corpus_dir), with
// `created_by` and `request` (CorpusManifest), and returns it.
CorpusManifest wrap_llmc_files(const std::vector<std::string>& files, const std::string& dir,
                               const TokenizerIdentity& tokenizer, const std::string& created_by,
                               const std::string& request);

}  // namespace kervan
