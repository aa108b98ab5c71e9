#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "core/model/bert_config.h"
#include "core/model/gpt_config.h"
#include "core/model/model.h"
#include "core/model/recurrent_config.h"
#include "core/model/t5_config.h"
#include "core/tp_group.h"
#include "launcher/run_config.h"

namespace kervan {

// The shape of preset `name` in the shared shape keys, for the family `arch`; UserError when the
// preset is unknown or belongs to another family ("model.preset 'bert-base' is a BERT preset, but
// model.arch is \"gpt\"").
GPTConfig preset_shape(const std::string& arch, const std::string& name);

// The family configs of a run (shape keys, t5_ffn; T5's feed-forward is 4 d_model, as in every
// published T5 v1.0 preset).
BertConfig bert_config(const RunConfig& c);
T5Config t5_config(const RunConfig& c);
// model.arch = rnn | lstm | gru: the shape keys and model.tied / residual / carry_state.
RecurrentConfig recurrent_config(const RunConfig& c);
// Parameters of the whole model, for the log.
int64_t model_params(const RunConfig& c);
// Training FLOPs per input token, for MFU: 6 x the parameters each token goes through (GPT: all of
// them, as llm.c counts). BERT's MLM head runs on the predicted positions only, a fraction
// `predicted_per_token` of the tokens; T5's decoder and LM head on decoder_per_token (T_dec / T)
// of them; embedding lookups are no FLOPs. Attention's T^2 terms are left out, as for GPT.
double flops_per_token(const RunConfig& c, double predicted_per_token, double decoder_per_token);

// The model of model.arch for micro-batches of `max_batch` x train.seq_len (and, for T5, decoder
// sequences of max_decoder_seq), split over `tp` (null: no tensor parallelism). num_classes > 0
// puts a classification head in place of the LM head (fine-tuning; GPT and BERT).
std::unique_ptr<Model> make_model(const RunConfig& c, Backend& be, int64_t max_batch, TpGroup* tp,
                                  int64_t max_decoder_seq = 0, int64_t num_classes = 0);

}  // namespace kervan
