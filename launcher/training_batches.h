#pragma once
#include <memory>
#include <vector>

#include "core/model/model.h"
#include "datasets/loader/data_loader.h"
#include "datasets/loader/example_batch.h"
#include "datasets/loader/masked_lm.h"
#include "datasets/loader/span_corruption.h"
#include "launcher/run_config.h"

namespace kervan {

// What a run's family trains on, sample by sample from a loader: GPT's next-token windows, BERT's
// masked-LM examples or T5's span-corruption examples (the loader's objectives), each a pure
// function of (seed, sources, sample index).
class TrainingBatches {
 public:
  // `loader` cuts windows of loader_seq_len(c) + 1 tokens; `seed` keys the objective's draws.
  TrainingBatches(const RunConfig& c, std::unique_ptr<DataLoader> loader, const SpecialTokens& specials,
                  uint64_t seed, std::vector<uint8_t> word_flags);
  // The loader's seq_len for train.seq_len model positions.
  static int64_t loader_seq_len(const RunConfig& c);

  void fill(int64_t first_sample, int64_t batch, ExampleBatch& out);
  DataLoader& loader() { return *loader_; }
  const DataLoader& loader() const { return *loader_; }
  // T5: the decoder's sequence length (the span-corruption targets); 0 for the other families.
  int64_t decoder_seq() const { return spans_ ? spans_->targets_length() : 0; }

 private:
  std::unique_ptr<DataLoader> loader_;
  std::unique_ptr<MaskedLm> mlm_;
  std::unique_ptr<SpanCorruption> spans_;
};

// The model's view of a batch of examples (empty fields are null).
Batch batch_view(const ExampleBatch& ex);

}  // namespace kervan
