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

  // model.carry_state: the order that keeps each row's windows consecutive. The one source's W
  // windows are cut into `lanes` (micro_batch x DP) stretches of S = W / lanes consecutive windows;
  // sample k = s * lanes + l (step s, lane l: DP rank l / micro_batch, row l % micro_batch) is
  // window l * S + (s mod S). Every S steps the lanes start their stretches again, and the carried
  // state is reset (stream_starts). Still a pure function of (corpus, lanes, k): DP = 2 reads what
  // one process reads, and a resume continues exactly. UserError when a lane gets no window.
  void carry_lanes(int64_t lanes, const std::string& config_file);
  // Whether the global batch that starts with sample k begins the lanes' stretches afresh.
  bool stream_starts(int64_t first_sample) const;
  DataLoader& loader() { return *loader_; }
  const DataLoader& loader() const { return *loader_; }
  // T5: the decoder's sequence length (the span-corruption targets); 0 for the other families.
  int64_t decoder_seq() const { return spans_ ? spans_->targets_length() : 0; }

 private:
  std::unique_ptr<DataLoader> loader_;
  int64_t lanes_ = 0, lane_windows_ = 0;  // carried state: lanes and windows per lane (S)
  std::unique_ptr<MaskedLm> mlm_;
  std::unique_ptr<SpanCorruption> spans_;
};

// The model's view of a batch of examples (empty fields are null).
Batch batch_view(const ExampleBatch& ex);

}  // namespace kervan
