#include "core/model/t5_config.h"

#include <map>

#include "core/error.h"

namespace kervan {

namespace {
const std::map<std::string, T5Config>& presets() {
  static const std::map<std::string, T5Config> table = {
      {"t5-tiny", {4, 4, 256, 32128, 1024}},
      {"t5-small", {6, 8, 512, 32128, 2048}},
      {"t5-base", {12, 12, 768, 32128, 3072}},
  };
  return table;
}
}  // namespace

T5Ffn parse_t5_ffn(const std::string& name) {
  if (name == "relu") return T5Ffn::Relu;
  if (name == "gated-gelu") return T5Ffn::GatedGelu;
  throw UserError("model.t5_ffn must be \"relu\" or \"gated-gelu\", got \"" + name + "\"");
}

std::string t5_ffn_name(T5Ffn ffn) {
  return ffn == T5Ffn::Relu ? "relu" : "gated-gelu";
}

T5Config t5_preset(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end()) {
    std::string known;
    for (const auto& n : t5_preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw UserError("model.preset: unknown T5 preset '" + name + "' (known: " + known + ")");
  }
  return it->second;
}

std::vector<std::string> t5_preset_names() {
  std::vector<std::string> names;
  for (const auto& [n, cfg] : presets()) names.push_back(n);
  return names;
}

int64_t T5Config::num_params() const {
  const int64_t C = d_model, I = n_head * head_dim(), F = d_ff;
  const int64_t attn = 4 * C * I;  // q, k, v, o (no biases)
  const int64_t feed_forward = (ffn == T5Ffn::GatedGelu ? 3 : 2) * C * F;
  const int64_t encoder = n_layer * (attn + feed_forward + 2 * C) + C + num_buckets * n_head;
  const int64_t decoder = n_layer * (2 * attn + feed_forward + 3 * C) + C + num_buckets * n_head;
  return vocab_size * C * (tied_head() ? 1 : 2) + encoder + decoder;
}

void T5Config::validate() const {
  auto positive = [](int64_t v, const char* key) {
    if (v <= 0) throw UserError(std::string("model.") + key + " must be positive, got " + std::to_string(v));
  };
  positive(n_layer, "n_layer");
  positive(n_head, "n_head");
  positive(d_model, "d_model");
  positive(vocab_size, "vocab_size");
  positive(d_ff, "d_ff");
  if (d_kv == 0 && d_model % n_head != 0)
    throw UserError("model.n_head (" + std::to_string(n_head) + ") does not divide model.d_model (" +
                    std::to_string(d_model) + ")");
  if (d_kv < 0) throw UserError("model.d_kv must be positive, got " + std::to_string(d_kv));
  if (vocab_size > (int64_t{1} << 31) - 1) throw UserError("model.vocab_size too large");
}

}  // namespace kervan
