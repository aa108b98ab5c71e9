#pragma once
#include <map>
#include <string>

#include "checkpoint/reader.h"
#include "checkpoint/safetensors.h"
#include "core/model/gpt_config.h"

namespace kervan {

// GPT-2 weights between kervan checkpoints and the files other tools use. In between they are
// whole global tensors under kervan's parameter names and layout ("wte" [padded vocab, C],
// "h.0.attn.c_attn.weight" [3C, C] as [out, in], ...).
struct Gpt2Weights {
  GPTConfig config;
  std::map<std::string, HostTensor> tensors;
};

// The model shape a checkpoint records (values model_config/*), and recording it.
void put_gpt_config(std::map<std::string, StateValue>& values, const GPTConfig& config);
GPTConfig gpt_config_of(const CheckpointReader& checkpoint);

// The model weights of a checkpoint saved under any layout.
Gpt2Weights read_checkpoint_weights(const CheckpointReader& checkpoint, Backend& backend);
// A step-0 checkpoint in `dir` holding just these weights (no optimizer state): what
// checkpoint.init_from starts a run from. `dir` must hold no checkpoint yet.
void write_weights_checkpoint(const std::string& dir, const Gpt2Weights& weights, Backend& backend);

// A Hugging Face GPT-2 folder: config.json and model.safetensors with HF's names
// ("transformer.h.0.attn.c_attn.weight") and Conv1D layout ([in, out], the transpose of kervan's),
// the vocabulary unpadded, the LM head tied to wte. Reading accepts names with or without the
// "transformer." prefix and ignores the attention-mask buffers.
void write_hf_gpt2(const std::string& folder, const Gpt2Weights& weights);
Gpt2Weights read_hf_gpt2(const std::string& folder);

// An llm.c model file (train_gpt2.c's gpt2_124M.bin): a 256 x int32 header (magic 20240326,
// version 3 = fp32 or 5 = bf16, max_seq_len, vocab, layers, heads, channels, padded vocab), then
// every tensor of one kind for all layers before the next kind, in [out, in] layout.
void write_llmc_gpt2(const std::string& path, const Gpt2Weights& weights);
Gpt2Weights read_llmc_gpt2(const std::string& path);

}  // namespace kervan
