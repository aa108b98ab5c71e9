#pragma once
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

// Opens and checks every source before training starts; any problem is a UserError naming the
// file (or the config key). `verify`: how much of each file to read (Verify::HeaderOnly when another
// process of this node has verified the same files in full).
TrainingData open_training_data(const RunConfig& cfg, Verify verify = Verify::Full);

}  // namespace kervan
