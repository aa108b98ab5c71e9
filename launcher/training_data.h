#pragma once
#include <functional>
#include <memory>
#include <string>

#include "datasets/loader/data_loader.h"
#include "launcher/run_config.h"

namespace kervan {

// The validation split of one training source, read unshuffled (the same windows every time).
struct ValidationSet {
  std::string path;
  double weight;  // the source's blend weight, renormalised over the sources that have a val split
  std::unique_ptr<DataLoader> loader;
};

// The data of a run, from [data]: the blended training loader and, when evaluation is on, the
// validation split of every source that has one (at least one must).
struct TrainingData {
  std::unique_ptr<DataLoader> train;
  std::vector<ValidationSet> val;
  std::string tokenizer;  // resolved data.tokenizer
  std::string describe() const;
};

// Opens one split ("train", "val") of a data.path entry.
using OpenSource =
    std::function<std::unique_ptr<TokenSource>(const std::string& path, const std::string& split)>;

// Opens and checks every source before training starts; any problem is a UserError naming the
// file (or the config key). `verify`: how much of each file to read (Verify::HeaderOnly when another
// process of this node has verified the same files in full).
TrainingData open_training_data(const RunConfig& cfg, Verify verify = Verify::Full);
// The same with sources from elsewhere (a coordinator: launcher/coordinated_data.h); `paths` are
// the data.path entries (for a coordinator, the corpora it serves when data.path is empty).
TrainingData open_training_data(const RunConfig& cfg, const std::vector<std::string>& paths,
                                const OpenSource& open);

}  // namespace kervan
