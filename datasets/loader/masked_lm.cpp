#include "datasets/loader/masked_lm.h"

#include <cmath>
#include <utility>

#include "core/error.h"
#include "core/rng.h"

namespace kervan {

uint8_t word_piece_flags(std::string_view bytes) {
  auto word_char = [](unsigned char c) {
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  };
  if (bytes.empty()) return 0;
  return static_cast<uint8_t>((word_char(bytes.front()) ? kStartsInWord : 0) |
                              (word_char(bytes.back()) ? kEndsInWord : 0));
}

MaskedLm::MaskedLm(DataLoader& windows, int64_t seq_len, const SpecialTokens& specials,
                   const MaskedLmOptions& opt, std::vector<uint8_t> word_flags)
    : windows_(windows),
      seq_len_(seq_len),
      to_predict_(std::max<int64_t>(1, std::llround(opt.mask_fraction * static_cast<double>(seq_len - 2)))),
      specials_(specials),
      opt_(opt),
      word_flags_(std::move(word_flags)),
      window_(seq_len - 2) {
  KERVAN_CHECK(specials.family == "bert", "MaskedLm needs BERT's special tokens");
  KERVAN_CHECK(windows.seq_len() == loader_seq_len(seq_len),
               "MaskedLm: the loader's windows have the wrong length");
  KERVAN_CHECK(!opt.whole_word || static_cast<int64_t>(word_flags_.size()) >= specials.base_vocab,
               "whole-word masking needs every token's word flags");
}

void MaskedLm::make_example(const int32_t* w, int64_t sample, int32_t* tokens, int32_t* targets) const {
  const int64_t T = seq_len_, n = T - 2;
  tokens[0] = specials_.cls();
  tokens[T - 1] = specials_.sep();
  for (int64_t i = 0; i < n; ++i) tokens[1 + i] = w[i];
  for (int64_t t = 0; t < T; ++t) targets[t] = -1;

  // The units that are predicted together: [begin, end) of content positions.
  std::vector<std::pair<int64_t, int64_t>> units;
  for (int64_t i = 0; i < n; ++i) {
    const bool continues = opt_.whole_word && i > 0 && (word_flags_[w[i]] & kStartsInWord) &&
                           (word_flags_[w[i - 1]] & kEndsInWord);
    if (continues)
      units.back().second = i + 1;
    else
      units.emplace_back(i, i + 1);
  }
  const uint64_t key =
      splitmix64(stream_key(opt_.seed, "bert.masking") ^ splitmix64(static_cast<uint64_t>(sample)));
  const uint64_t order_key = splitmix64(key ^ 1), replace_key = splitmix64(key ^ 2);
  // Fisher-Yates over the units, drawn lazily: taking units until n are predicted.
  int64_t count = 0;
  for (size_t u = 0; u < units.size() && count < to_predict_; ++u) {
    const size_t pick =
        u + static_cast<size_t>(uniform_at(order_key, u) * static_cast<double>(units.size() - u));
    std::swap(units[u], units[pick]);
    const auto [begin, end] = units[u];
    if (count + (end - begin) > to_predict_) continue;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t t = 1 + i;
      targets[t] = w[i];
      const double r = uniform_at(replace_key, 2 * t);
      if (r < opt_.replace_mask)
        tokens[t] = specials_.mask();
      else if (r < opt_.replace_mask + opt_.replace_random)
        tokens[t] = static_cast<int32_t>(uniform_at(replace_key, 2 * t + 1) *
                                         static_cast<double>(specials_.base_vocab));
    }
    count += end - begin;
  }
}

void MaskedLm::fill_batch(int64_t first_sample, int64_t batch, ExampleBatch& out) {
  const int64_t T = seq_len_;
  out.B = batch;
  out.T = T;
  out.T_dec = 0;
  out.tokens.resize(batch * T);
  out.targets.resize(batch * T);
  out.token_types.assign(batch * T, 0);
  out.lengths.clear();
  out.decoder_tokens.clear();
  for (int64_t b = 0; b < batch; ++b) {
    windows_.read_window(first_sample + b, window_.data());
    make_example(window_.data(), first_sample + b, &out.tokens[b * T], &out.targets[b * T]);
  }
}

}  // namespace kervan
