#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace kervan {

// `kervan ckpt`: look at, check and convert checkpoints. DIR is a step folder or a checkpoint
// folder (meaning its newest committed checkpoint).
//   inspect DIR [--json]         step, the layout that wrote it, data position, values, tensors
//   verify DIR                   every checksum; exit 1 naming the file and tensor on damage
//   export --format hf DIR OUT   a Hugging Face GPT-2 folder (config.json + model.safetensors)
//   export --format llmc DIR OUT an llm.c model file (gpt2_124M.bin layout)
//   import --format hf|llmc IN DIR   a step-0 checkpoint of IN's weights (checkpoint.init_from)
class CkptCommand {
 public:
  explicit CkptCommand(CLI::App& app);
  CkptCommand(const CkptCommand&) = delete;
  CkptCommand& operator=(const CkptCommand&) = delete;

  bool selected() const;
  int run() const;

 private:
  int inspect() const;
  int verify() const;

  CLI::App *inspect_, *verify_, *export_, *import_;
  std::string dir_, out_, in_, format_;
  bool json_ = false;
};

}  // namespace kervan
