#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/loader/example_batch.h"
#include "datasets/tokenizer/special_tokens.h"
#include "launcher/run_config.h"
#include "launcher/text_codec.h"

namespace kervan {

// One example of a fine-tuning file: classify's `text` and `label`, or text2text's `input` and
// `target`, with the file and line it came from.
struct FinetuneRecord {
  std::string input, output;
  std::string where;  // "FILE:LINE"
};

struct FinetuneFile {
  std::vector<FinetuneRecord> records;
  int64_t skipped = 0;  // bad lines skipped (--skip-bad-lines)
};

// Reads a JSON-lines file of the task's objects (blank lines are ignored). A line that is not a
// JSON object with the task's two fields as strings (a label may also be an integer) is a
// UserError "FILE:LINE: ...", or with skip_bad_lines is skipped and counted.
FinetuneFile read_finetune_file(const std::string& path, const std::string& task, bool skip_bad_lines);

// The label set of a classify run: finetune.labels, or the training file's labels, sorted.
std::vector<std::string> label_set(const RunConfig& c, const FinetuneFile& train);

// An example as token ids: the input, and the target's tokens or the label's class index.
struct FinetuneExample {
  std::vector<int32_t> input, target;
  int32_t label = -1;
};

// Encodes records with the run's tokenizer. A label outside `labels` is a UserError "FILE:LINE:
// label 'x' is not one of ...". Inputs are cut to what a sequence holds (see make_finetune_batch).
std::vector<FinetuneExample> encode_records(const FinetuneFile& file, const TextCodec& codec,
                                            const std::vector<std::string>& labels, const RunConfig& c);

// Lays examples out as the family's batch of train.seq_len positions (right-padded):
//   classify, BERT:  [CLS] text [SEP] [PAD]..  lengths; the label at position 0 ([CLS])
//   classify, GPT:   text <eot> <eot>..        the label at the last real position (the <eot>)
//   text2text, T5:   input </s> [PAD]..  lengths; targets: target </s> then -1 (finetune.
//                    max_target_len in all); decoder input: [PAD] and the targets shifted right
//   text2text, GPT:  input <eot> target <eot> as one sequence, predicting only the target part
// (</s> is the tokenizer's end of text). Inputs too long lose their end (GPT text2text: its start).
void make_finetune_batch(const RunConfig& c, const SpecialTokens& specials,
                         const std::vector<const FinetuneExample*>& examples, ExampleBatch& out);

}  // namespace kervan
