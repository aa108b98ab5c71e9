#include "core/model/recurrent_config.h"

#include <map>

#include "core/error.h"
#include "core/layers/recurrent.h"

namespace kervan {

namespace {
const std::map<std::string, RecurrentConfig>& presets() {
  using C = RecurrentCell;
  static const std::map<std::string, RecurrentConfig> table = {
      {"rnn-tiny", {C::Rnn, 24, 256, 8192}},     {"lstm-tiny", {C::Lstm, 6, 256, 8192}},
      {"gru-tiny", {C::Gru, 8, 256, 8192}},      {"rnn-small", {C::Rnn, 72, 768, 50257}},
      {"lstm-small", {C::Lstm, 18, 768, 50257}}, {"gru-small", {C::Gru, 24, 768, 50257}},
  };
  return table;
}
}  // namespace

bool is_recurrent_arch(const std::string& arch) {
  return arch == "rnn" || arch == "lstm" || arch == "gru";
}

RecurrentCell parse_recurrent_cell(const std::string& arch) {
  if (arch == "rnn") return RecurrentCell::Rnn;
  if (arch == "lstm") return RecurrentCell::Lstm;
  if (arch == "gru") return RecurrentCell::Gru;
  throw UserError("model.arch: \"" + arch + "\" is not a recurrent family (rnn, lstm, gru)");
}

RecurrentConfig recurrent_preset(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end()) {
    std::string known;
    for (const auto& n : recurrent_preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw UserError("model.preset: unknown preset '" + name + "' (known: " + known + ")");
  }
  return it->second;
}

std::vector<std::string> recurrent_preset_names() {
  std::vector<std::string> names;
  for (const auto& [n, cfg] : presets()) names.push_back(n);
  return names;
}

int64_t RecurrentConfig::num_params() const {
  const int64_t C = d_model;
  return vocab_size * C * (tied ? 1 : 2) + n_layer * RecurrentLayer::num_params(cell, C, C);
}

void RecurrentConfig::validate() const {
  auto positive = [](int64_t v, const char* key) {
    if (v <= 0) throw UserError(std::string("model.") + key + " must be positive, got " + std::to_string(v));
  };
  positive(n_layer, "n_layer");
  positive(d_model, "d_model");
  positive(vocab_size, "vocab_size");
  if (vocab_size > (int64_t{1} << 31) - 1) throw UserError("model.vocab_size too large");
}

}  // namespace kervan
