#include "datasets/loader/data_loader.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace kervan {

DataLoader::DataLoader(std::vector<Source> sources, int64_t seq_len, uint64_t seed, bool shuffle)
    : seed_(seed), shuffle_(shuffle) {
  KERVAN_CHECK(!sources.empty(), "DataLoader: no sources");
  KERVAN_CHECK(shuffle || sources.size() == 1, "DataLoader: unshuffled reading takes one source");
  double total = 0;
  for (const Source& s : sources) {
    if (!(s.weight > 0) || !std::isfinite(s.weight))
      throw UserError(s.tokens->path() + ": blend weight must be positive and finite");
    total += s.weight;
  }
  if (!std::isfinite(total)) throw UserError(sources[0].tokens->path() + ": blend weights are too large");
  for (Source& s : sources) {
    auto seqs = std::make_unique<PackedSequences>(s.tokens->spans(), seq_len);
    if (seqs->num_windows() < 1)
      throw UserError(s.tokens->path() + ": its " + std::to_string(seqs->num_tokens()) +
                      " tokens are fewer than one training sequence (train.seq_len + 1 = " +
                      std::to_string(seq_len + 1) + ")");
    // The blend runs on integer shares of 2^24: exact, so the order cannot depend on how a
    // floating-point lag would be compiled (fused multiply-add or not) or on the machine.
    const auto share = static_cast<int64_t>(std::ldexp(s.weight / total, kShareBits));
    if (share == 0)
      throw UserError(s.tokens->path() + ": blend weight is too small (below 2^-24 of the total)");
    share_total_ += share;
    sources_.push_back({std::move(s.tokens), s.weight / total, share, std::move(seqs), std::nullopt});
  }
}

std::pair<int, int64_t> DataLoader::blend(int64_t k) {
  if (sources_.size() == 1) return {0, k};
  KERVAN_CHECK(k < kMaxBlendSamples, "DataLoader: sample index beyond the blend's range");
  if (k < cursor_) {  // going back (a new run over the same loader): replay from the start
    cursor_ = 0;
    for (Opened& s : sources_) s.taken = 0;
  }
  for (;; ++cursor_) {
    // lag_d = share_d * (k + 1) - taken_d * share_total, i.e. (w_d * (k + 1) - taken_d) scaled;
    // below 2^62 in magnitude for k < kMaxBlendSamples.
    int best = 0;
    int64_t best_lag = 0;
    for (size_t d = 0; d < sources_.size(); ++d) {
      const int64_t lag = sources_[d].share * (cursor_ + 1) - sources_[d].taken * share_total_;
      if (d == 0 || lag > best_lag) best_lag = lag, best = static_cast<int>(d);
    }
    const int64_t index = sources_[best].taken++;
    if (cursor_ == k) {
      ++cursor_;
      return {best, index};
    }
  }
}

SampleRef DataLoader::locate(int64_t k) {
  KERVAN_CHECK(k >= 0, "DataLoader: negative sample index");
  const auto [d, j] = blend(k);
  Opened& s = sources_[d];
  const int64_t windows = s.sequences->num_windows();
  const int64_t epoch = j / windows, position = j % windows;
  if (!shuffle_) return {d, epoch, position};
  if (epoch != s.perm_epoch) {
    const uint64_t key =
        stream_key(seed_, "data.source." + std::to_string(d) + ".epoch." + std::to_string(epoch));
    s.perm.emplace(static_cast<uint64_t>(windows), key);
    s.perm_epoch = epoch;
  }
  return {d, epoch, static_cast<int64_t>((*s.perm)(static_cast<uint64_t>(position)))};
}

void DataLoader::read_window(int64_t k, int32_t* tokens) {
  const SampleRef ref = locate(k);
  sources_[ref.source].sequences->read_window(ref.window, tokens);
}

int64_t DataLoader::seq_len() const {
  return sources_[0].sequences->seq_len();
}

void DataLoader::fill_batch(int64_t first_sample, int64_t batch, int32_t* inputs, int32_t* targets) {
  const int64_t T = sources_[0].sequences->seq_len();
  for (int64_t b = 0; b < batch; ++b) {
    const SampleRef ref = locate(first_sample + b);
    sources_[ref.source].sequences->read(ref.window, inputs + b * T, targets + b * T);
  }
}

}  // namespace kervan
