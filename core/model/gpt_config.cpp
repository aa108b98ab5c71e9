#include "core/model/gpt_config.h"

#include <map>

#include "core/error.h"

namespace kervan {

namespace {
const std::map<std::string, GPTConfig>& presets() {
  static const std::map<std::string, GPTConfig> table = {
      {"gpt2-tiny", {4, 4, 256, 8192, 256}},      {"gpt2-small", {12, 12, 768, 50257, 1024}},
      {"gpt2-medium", {24, 16, 1024, 50257, 1024}}, {"gpt2-large", {36, 20, 1280, 50257, 1024}},
      {"gpt2-xl", {48, 25, 1600, 50257, 1024}},
  };
  return table;
}
}  // namespace

GPTConfig gpt_preset(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end()) {
    std::string known;
    for (const auto& n : gpt_preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw UserError("model.preset: unknown preset '" + name + "' (known: " + known + ")");
  }
  return it->second;
}

std::vector<std::string> gpt_preset_names() {
  std::vector<std::string> names;
  for (const auto& [n, cfg] : presets()) names.push_back(n);
  return names;
}

int64_t GPTConfig::num_params() const {
  const int64_t C = d_model;
  const int64_t per_layer = 2 * C            // ln_1
                            + 3 * C * C + 3 * C  // c_attn
                            + C * C + C          // attn c_proj
                            + 2 * C              // ln_2
                            + 4 * C * C + 4 * C  // c_fc
                            + 4 * C * C + C;     // mlp c_proj
  return vocab_size * C + max_seq_len * C + n_layer * per_layer + 2 * C;
}

void GPTConfig::validate() const {
  auto positive = [](int64_t v, const char* key) {
    if (v <= 0) throw UserError(std::string("model.") + key + " must be positive, got " + std::to_string(v));
  };
  positive(n_layer, "n_layer");
  positive(n_head, "n_head");
  positive(d_model, "d_model");
  positive(vocab_size, "vocab_size");
  positive(max_seq_len, "max_seq_len");
  if (d_model % n_head != 0)
    throw UserError("model.n_head (" + std::to_string(n_head) + ") does not divide model.d_model (" +
                    std::to_string(d_model) + ")");
  if (vocab_size > (int64_t{1} << 31) - 1) throw UserError("model.vocab_size too large");
}

}  // namespace kervan
