#include "datasets/loader/data_loader.h"

#include <algorithm>
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
    served_ = served_ || s.tokens->store() != nullptr;
    sources_.push_back({std::move(s.tokens), s.weight / total, share, std::move(seqs)});
  }
  for (Cursor* c : {&reading_, &ahead_}) {
    c->taken.assign(sources_.size(), 0);
    c->perm.resize(sources_.size());
    c->perm_epoch.assign(sources_.size(), -1);
  }
}

std::pair<int, int64_t> DataLoader::blend(int64_t k, Cursor& c) {
  if (sources_.size() == 1) return {0, k};
  KERVAN_CHECK(k < kMaxBlendSamples, "DataLoader: sample index beyond the blend's range");
  if (k < c.next) {  // going back (a new run over the same loader): replay from the start
    c.next = 0;
    std::fill(c.taken.begin(), c.taken.end(), 0);
  }
  for (;; ++c.next) {
    // lag_d = share_d * (k + 1) - taken_d * share_total, i.e. (w_d * (k + 1) - taken_d) scaled;
    // below 2^62 in magnitude for k < kMaxBlendSamples.
    int best = 0;
    int64_t best_lag = 0;
    for (size_t d = 0; d < sources_.size(); ++d) {
      const int64_t lag = sources_[d].share * (c.next + 1) - c.taken[d] * share_total_;
      if (d == 0 || lag > best_lag) best_lag = lag, best = static_cast<int>(d);
    }
    const int64_t index = c.taken[best]++;
    if (c.next == k) {
      ++c.next;
      return {best, index};
    }
  }
}

SampleRef DataLoader::locate(int64_t k, Cursor& c) {
  KERVAN_CHECK(k >= 0, "DataLoader: negative sample index");
  const auto [d, j] = blend(k, c);
  const int64_t windows = sources_[d].sequences->num_windows();
  const int64_t epoch = j / windows, position = j % windows;
  if (!shuffle_) return {d, epoch, position};
  if (epoch != c.perm_epoch[d]) {
    const uint64_t key =
        stream_key(seed_, "data.source." + std::to_string(d) + ".epoch." + std::to_string(epoch));
    c.perm[d].emplace(static_cast<uint64_t>(windows), key);
    c.perm_epoch[d] = epoch;
  }
  return {d, epoch, static_cast<int64_t>((*c.perm[d])(static_cast<uint64_t>(position)))};
}

std::vector<std::vector<StreamRange>> DataLoader::stream_ranges(const std::vector<SampleRef>& refs) const {
  std::vector<std::vector<StreamRange>> ranges(sources_.size());
  const auto T = static_cast<uint64_t>(sources_[0].sequences->seq_len());
  for (const SampleRef& ref : refs)
    if (sources_[ref.source].tokens->store())
      ranges[ref.source].push_back({static_cast<uint64_t>(ref.window) * T, T + 1});
  return ranges;
}

void DataLoader::read_window(int64_t k, int32_t* tokens) {
  const SampleRef ref = locate(k);
  if (served_)
    if (const auto ranges = stream_ranges({ref}); !ranges[ref.source].empty())
      sources_[ref.source].tokens->store()->require(ranges[ref.source]);
  sources_[ref.source].sequences->read_window(ref.window, tokens);
}

void DataLoader::fetch(int64_t first_sample, int64_t batch) {
  if (!served_) return;
  std::vector<SampleRef> refs(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) refs[b] = locate(first_sample + b);
  const auto ranges = stream_ranges(refs);
  for (size_t d = 0; d < sources_.size(); ++d)
    if (!ranges[d].empty()) sources_[d].tokens->store()->require(ranges[d]);
  if (read_ahead_ > 0) prefetch_ahead(first_sample, batch);
}

int64_t DataLoader::seq_len() const {
  return sources_[0].sequences->seq_len();
}

void DataLoader::fill_batch(int64_t first_sample, int64_t batch, int32_t* inputs, int32_t* targets) {
  const int64_t T = sources_[0].sequences->seq_len();
  std::vector<SampleRef> refs(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) refs[b] = locate(first_sample + b);
  if (served_) {
    const auto ranges = stream_ranges(refs);
    for (size_t d = 0; d < sources_.size(); ++d)
      if (!ranges[d].empty()) sources_[d].tokens->store()->require(ranges[d]);
    if (read_ahead_ > 0) prefetch_ahead(first_sample, batch);
  }
  for (int64_t b = 0; b < batch; ++b)
    sources_[refs[b].source].sequences->read(refs[b].window, inputs + b * T, targets + b * T);
}

// Calls come at a fixed distance (the stride) in training, learnt from the last two calls; each
// call prefetches the batches up to read_ahead_ strides past itself that no earlier call has.
void DataLoader::prefetch_ahead(int64_t first_sample, int64_t batch) {
  const int64_t stride = last_first_ >= 0 ? first_sample - last_first_ : 0;
  last_first_ = first_sample;
  if (stride <= 0) {  // the first call, or a step back: the pattern is not known yet
    prefetched_until_ = -1;
    return;
  }
  if (stride != stride_) stride_ = stride, prefetched_until_ = -1;
  const int64_t until = first_sample + read_ahead_ * stride_;
  for (int64_t next = std::max(first_sample, prefetched_until_) + stride_; next <= until; next += stride_) {
    std::vector<SampleRef> refs(static_cast<size_t>(batch));
    for (int64_t b = 0; b < batch; ++b) refs[b] = locate(next + b, ahead_);
    const auto ranges = stream_ranges(refs);
    for (size_t d = 0; d < sources_.size(); ++d)
      if (!ranges[d].empty()) sources_[d].tokens->store()->prefetch(ranges[d]);
    prefetched_until_ = next;
  }
}

}  // namespace kervan
