#include "core/model/bert_config.h"

#include <map>

#include "core/error.h"

namespace kervan {

namespace {
const std::map<std::string, BertConfig>& presets() {
  static const std::map<std::string, BertConfig> table = {
      {"bert-tiny", {2, 2, 128, 30522}},
      {"bert-mini", {4, 4, 256, 30522}},
      {"bert-base", {12, 12, 768, 30522}},
      {"bert-large", {24, 16, 1024, 30522}},
  };
  return table;
}
}  // namespace

BertConfig bert_preset(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end()) {
    std::string known;
    for (const auto& n : bert_preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw UserError("model.preset: unknown BERT preset '" + name + "' (known: " + known + ")");
  }
  return it->second;
}

std::vector<std::string> bert_preset_names() {
  std::vector<std::string> names;
  for (const auto& [n, cfg] : presets()) names.push_back(n);
  return names;
}

int64_t BertConfig::num_params() const {
  const int64_t C = d_model, F = d_ff();
  const int64_t per_layer = 3 * C * C + 3 * C  // q, k, v
                            + C * C + C        // attention output
                            + 2 * C            // LayerNorm after attention
                            + F * C + F        // intermediate
                            + C * F + C        // output
                            + 2 * C;           // LayerNorm after the feed-forward
  const int64_t embeddings = (vocab_size + max_seq_len + type_vocab) * C + 2 * C;
  const int64_t mlm_head = C * C + C + 2 * C + vocab_size;  // transform, its LayerNorm, output bias
  return embeddings + n_layer * per_layer + mlm_head;
}

void BertConfig::validate() const {
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
