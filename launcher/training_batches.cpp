#include "launcher/training_batches.h"

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
  loader_->fill_batch(first_sample, batch, out.tokens.data(), out.targets.data());
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
