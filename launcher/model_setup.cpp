#include "launcher/model_setup.h"

#include "core/error.h"
#include "core/model/bert.h"
#include "core/model/gpt.h"
#include "core/model/recurrent.h"
#include "core/model/t5.h"

namespace kervan {

namespace {
std::string family_of_preset(const std::string& name) {
  for (const std::string& n : gpt_preset_names())
    if (n == name) return "gpt";
  for (const std::string& n : bert_preset_names())
    if (n == name) return "bert";
  for (const std::string& n : t5_preset_names())
    if (n == name) return "t5";
  for (const std::string& n : recurrent_preset_names())
    if (n == name) return n.substr(0, n.find('-'));  // "lstm-tiny" -> "lstm"
  return "";
}
}  // namespace

GPTConfig preset_shape(const std::string& arch, const std::string& name) {
  const std::string family = family_of_preset(name);
  if (!family.empty() && family != arch)
    throw UserError("model.preset '" + name + "' is a " + family + " preset, but model.arch is \"" + arch +
                    "\" (set model.arch = \"" + family + "\")");
  if (arch == "bert") {
    const BertConfig b = bert_preset(name);
    return {b.n_layer, b.n_head, b.d_model, b.vocab_size, b.max_seq_len};
  }
  if (arch == "t5") {
    const T5Config t = t5_preset(name);
    return {t.n_layer, t.n_head, t.d_model, t.vocab_size, 0};
  }
  if (is_recurrent_arch(arch)) {
    const RecurrentConfig r = recurrent_preset(name);
    return {r.n_layer, 1, r.d_model, r.vocab_size, 0};
  }
  return gpt_preset(name);
}

BertConfig bert_config(const RunConfig& c) {
  return {c.model.n_layer, c.model.n_head, c.model.d_model, c.model.vocab_size, c.model.max_seq_len};
}

T5Config t5_config(const RunConfig& c) {
  return {c.model.n_layer,       c.model.n_head, c.model.d_model, c.model.vocab_size, 4 * c.model.d_model, 0,
          parse_t5_ffn(c.t5_ffn)};
}

RecurrentConfig recurrent_config(const RunConfig& c) {
  return {parse_recurrent_cell(c.arch), c.model.n_layer,  c.model.d_model,
          c.model.vocab_size,           c.recurrent.tied, c.recurrent.residual,
          c.recurrent.carry_state};
}

int64_t model_params(const RunConfig& c) {
  if (is_recurrent_arch(c.arch)) return recurrent_config(c).num_params();
  if (c.arch == "bert") return bert_config(c).num_params();
  if (c.arch == "t5") return t5_config(c).num_params();
  return c.model.num_params();
}

double flops_per_token(const RunConfig& c, double predicted_per_token, double decoder_per_token) {
  const double C = static_cast<double>(c.model.d_model), V = static_cast<double>(c.model.vocab_size);
  if (c.arch == "bert") {
    const BertConfig b = bert_config(c);
    const double embeddings = (V + b.max_seq_len + b.type_vocab) * C + 2 * C;
    const double transform = C * C + 3 * C;  // dense and its LayerNorm; then the tied decoder V x C
    const double blocks = static_cast<double>(b.num_params()) - embeddings - transform - V;
    return 6.0 * (blocks + predicted_per_token * (transform + V * C));
  }
  if (c.arch == "t5") {
    const T5Config t = t5_config(c);
    const double I = t.n_head * t.head_dim(), F = static_cast<double>(t.d_ff);
    const double ffn = (t.ffn == T5Ffn::GatedGelu ? 3 : 2) * C * F;
    // Per encoder token: its blocks and every decoder block's cross-attention k|v projection; per
    // decoder token: self-attention, cross-attention q and o, the feed-forward, the LM head.
    const double encoder = t.n_layer * (6 * C * I + ffn), decoder = t.n_layer * (6 * C * I + ffn);
    return 6.0 * (encoder + decoder_per_token * (decoder + V * C));
  }
  if (is_recurrent_arch(c.arch)) {
    // Every token goes through every layer and the output layer; the embedding lookup is no FLOPs.
    const RecurrentConfig r = recurrent_config(c);
    return 6.0 * static_cast<double>(r.num_params() - (r.tied ? 0 : V * C));
  }
  return 6.0 * static_cast<double>(c.model.num_params());
}

std::unique_ptr<Model> make_model(const RunConfig& c, Backend& be, int64_t max_batch, TpGroup* tp,
                                  int64_t max_decoder_seq, int64_t num_classes) {
  const int64_t T = c.train.seq_len;
  try {
    if (c.arch == "bert") return std::make_unique<Bert>(bert_config(c), be, max_batch, T, tp, num_classes);
    if (c.arch == "t5") {
      KERVAN_CHECK(num_classes == 0, "T5 has no classification head");
      return std::make_unique<T5>(t5_config(c), be, max_batch, T, max_decoder_seq, tp);
    }
    if (is_recurrent_arch(c.arch)) {
      KERVAN_CHECK(num_classes == 0, "recurrent models have no classification head");
      return std::make_unique<RecurrentLM>(recurrent_config(c), be, max_batch, T, tp);
    }
    return std::make_unique<GPT>(c.model, be, max_batch, T, tp, num_classes);
  } catch (const UserError& e) {
    throw UserError(c.file + ": " + e.what());
  }
}

}  // namespace kervan
