#pragma once
#include <memory>
#include <string>

#include "datasets/data_loader.h"
#include "launcher/run_config.h"

namespace kervan {

// The data of a run, from [data]: the blended training loader, and the loader of the first
// source's validation split when evaluation is on (unshuffled: the same windows every time).
struct TrainingData {
  std::unique_ptr<DataLoader> train;
  std::unique_ptr<DataLoader> val;
  std::string tokenizer;  // resolved data.tokenizer
  std::string describe() const;
};

// Opens and checks every source before training starts; any problem is a UserError naming the
// file (or the config key).
TrainingData open_training_data(const RunConfig& cfg);

}  // namespace kervan
