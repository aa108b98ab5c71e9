#pragma once
#include "launcher/run_config.h"

namespace kervan {

// `kervan finetune --config F.toml [--set ...] [--skip-bad-lines]`: trains model.arch's model on a
// task of JSON-lines examples (finetune.*) with the same training step, parallel layouts and
// schedule as `kervan train`:
//   classify:  a classification head (BERT: pooler on [CLS]; GPT: the last token) over the labels;
//              validation: loss, accuracy, per-class precision and recall;
//   text2text: T5 (encoder input, decoder target) or GPT (the target as the continuation of the
//              input); validation: loss and exact match of greedy generations, a few shown.
// The model starts from its initialisation, or from the model weights of a checkpoint of the same
// family and shape (finetune.init_from: e.g. one saved by `kervan train`; its LM head is not read,
// the new classification head starts from its initialisation). Checkpoints, resume and stop
// signals work as in `kervan train` (checkpoint.*). Returns the exit code.
int run_finetune(const RunConfig& config, bool skip_bad_lines);

}  // namespace kervan
