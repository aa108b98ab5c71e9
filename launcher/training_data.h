#pragma once
#include <functional>
#include <memory>
#include <string>

#include "datasets/tokenizer/special_tokens.h"
#include "launcher/run_config.h"
#include "launcher/training_batches.h"

namespace kervan {

// The validation split of one training source, read unshuffled (the same examples every time).
struct ValidationSet {
  std::string path;
  double weight;  // the source's blend weight, renormalised over the sources that have a val split
  std::unique_ptr<TrainingBatches> batches;
};

// The data of a run, from [data]: the blended training batches (the family's objective over the
// loader) and, when evaluation is on, the validation split of every source that has one (at least
// one must).
struct TrainingData {
  std::unique_ptr<TrainingBatches> train;
  std::vector<ValidationSet> val;
  std::string tokenizer;   // resolved data.tokenizer
  SpecialTokens specials;  // the family's, after the corpus tokenizer's vocabulary
  std::string describe() const;
};

// Opens one split ("train", "val") of a data.path entry.
using OpenSource =
    std::function<std::unique_ptr<TokenSource>(const std::string& path, const std::string& split)>;

// Opens and checks every source before training starts; any problem is a UserError naming the
// file (or the config key). BERT and T5 need kervan corpora (their manifests name the tokenizer
// whose vocabulary the special tokens follow), and model.vocab_size must have room for them.
// `verify`: how much of each file to read (Verify::HeaderOnly when another process of this node
// has verified the same files in full).
TrainingData open_training_data(const RunConfig& cfg, Verify verify = Verify::Full);
// The same with sources from elsewhere (a coordinator: launcher/coordinated_data.h); `paths` are
// the data.path entries (for a coordinator, the corpora it serves when data.path is empty).
TrainingData open_training_data(const RunConfig& cfg, const std::vector<std::string>& paths,
                                const OpenSource& open);

}  // namespace kervan
