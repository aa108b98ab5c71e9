#include "launcher/training_batches.h"

#include "core/error.h"

namespace kervan {

int64_t TrainingBatches::loader_seq_len(const RunConfig& c) {
  if (c.arch == "bert") return MaskedLm::loader_seq_len(c.train.seq_len);
  if (c.arch == "t5") return SpanCorruption::loader_seq_len(c.train.seq_len, {});
  return c.train.seq_len;
}

TrainingBatches::TrainingBatches(const RunConfig& c, std::unique_ptr<DataLoader> loader,
                                 const SpecialTokens& specials, uint64_t seed,
                                 std::vector<uint8_t> word_flags)
    : loader_(std::move(loader)) {
  if (c.arch == "bert") {
    MaskedLmOptions opt;
    opt.whole_word = c.data.whole_word_masking == 1;
    opt.seed = seed;
    mlm_ = std::make_unique<MaskedLm>(*loader_, c.train.seq_len, specials, opt, std::move(word_flags));
  } else if (c.arch == "t5") {
    SpanCorruptionOptions opt;
    opt.seed = seed;
    spans_ = std::make_unique<SpanCorruption>(*loader_, c.train.seq_len, specials, opt);
  }
}

void TrainingBatches::fill(int64_t first_sample, int64_t batch, ExampleBatch& out) {
  if (mlm_ || spans_) {
    loader_->fetch(first_sample, batch);  // served sources: the batch in one go, the next ones ahead
    if (mlm_) return mlm_->fill_batch(first_sample, batch, out);
    return spans_->fill_batch(first_sample, batch, out);
  }
  const int64_t T = loader_->seq_len();
  out = ExampleBatch{};
  out.B = batch;
  out.T = T;
  out.tokens.resize(batch * T);
  out.targets.resize(batch * T);
  if (lanes_ == 0) return loader_->fill_batch(first_sample, batch, out.tokens.data(), out.targets.data());
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t k = first_sample + i, lane = k % lanes_, step = k / lanes_;
    loader_->read_source_window(0, lane * lane_windows_ + step % lane_windows_, out.tokens.data() + i * T,
                                out.targets.data() + i * T);
  }
}

void TrainingBatches::carry_lanes(int64_t lanes, const std::string& config_file) {
  KERVAN_CHECK(loader_->num_sources() == 1, "carried state reads one source");
  const int64_t W = loader_->num_windows(0);
  if (W < lanes)
    throw UserError(config_file + ": model.carry_state = true gives each of the " + std::to_string(lanes) +
                    " batch rows (train.micro_batch x data-parallel ranks) its own stretch of " +
                    loader_->source(0).path() + ", which has only " + std::to_string(W) + " windows of " +
                    std::to_string(loader_->seq_len()) + " tokens: lower train.micro_batch or train.seq_len");
  lanes_ = lanes;
  lane_windows_ = W / lanes;
}

bool TrainingBatches::stream_starts(int64_t first_sample) const {
  return lanes_ > 0 && (first_sample / lanes_) % lane_windows_ == 0;
}

Batch batch_view(const ExampleBatch& ex) {
  auto ptr = [](const std::vector<int32_t>& v) { return v.empty() ? nullptr : v.data(); };
  Batch b{ex.B, ex.T, ptr(ex.tokens), ptr(ex.targets)};
  b.token_types = ptr(ex.token_types);
  b.lengths = ptr(ex.lengths);
  b.T_dec = ex.T_dec;
  b.decoder_tokens = ptr(ex.decoder_tokens);
  return b;
}

}  // namespace kervan
