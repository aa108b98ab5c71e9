#include "launcher/ckpt_cmd.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/gpt2_weights.h"
#include "checkpoint/reader.h"
#include "checkpoint/verify.h"
#include "core/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/paths.h"

namespace kervan {

using nlohmann::json;

namespace {

json value_json(const StateValue& v) {
  return std::visit([](const auto& x) { return json(x); }, v);
}

// Tensors grouped by name: global shape, dtype and how many slices hold them.
struct TensorSummary {
  Shape shape;
  DType dtype;
  int slices = 0;
  int64_t elements = 0;
};

std::map<std::string, TensorSummary> summarize(const Manifest& m) {
  std::map<std::string, TensorSummary> out;
  for (const SavedTensor& t : m.tensors) {
    TensorSummary& s = out[t.name];
    s.shape = t.slice.global_shape;
    s.dtype = t.dtype;
    ++s.slices;
    s.elements += t.slice.flat_count;
  }
  return out;
}

}  // namespace

CkptCommand::CkptCommand(CLI::App& app) {
  auto* ckpt = app.add_subcommand("ckpt", "Inspect, verify, export and import checkpoints");
  ckpt->require_subcommand(1);
  const std::string dir_help = "A step folder, or a checkpoint folder (its newest checkpoint)";
  inspect_ = ckpt->add_subcommand("inspect", "Step, layout, data position and tensors of a checkpoint");
  inspect_->add_option("dir", dir_, dir_help)->required();
  inspect_->add_flag("--json", json_, "One JSON object instead of text");
  verify_ = ckpt->add_subcommand("verify", "Check every file and tensor checksum (exit 1 on damage)");
  verify_->add_option("dir", dir_, dir_help)->required();
  export_ = ckpt->add_subcommand("export", "Write a checkpoint's model weights for other tools");
  export_->add_option("--format", format_, "hf (Hugging Face GPT-2 folder) or llmc (llm.c model file)")
      ->required()
      ->check(CLI::IsMember({"hf", "llmc"}));
  export_->add_option("dir", dir_, dir_help)->required();
  export_->add_option("out", out_, "Output folder (hf) or file (llmc)")->required();
  import_ = ckpt->add_subcommand("import", "Make a step-0 checkpoint from released GPT-2 weights");
  import_->add_option("--format", format_, "hf (Hugging Face GPT-2 folder) or llmc (llm.c model file)")
      ->required()
      ->check(CLI::IsMember({"hf", "llmc"}));
  import_->add_option("in", in_, "Hugging Face folder (hf) or llm.c model file (llmc)")->required();
  import_->add_option("dir", dir_, "Checkpoint folder to create (must hold no checkpoint)")->required();
}

bool CkptCommand::selected() const {
  return inspect_->parsed() || verify_->parsed() || export_->parsed() || import_->parsed();
}

namespace {

// Runs `write(aside)` with a fresh name beside `out`, then renames it to `out`: an export appears
// complete or not at all, and never replaces anything (kervan does not overwrite what it did not
// write), nor lands inside the checkpoint it reads.
void write_export(const std::string& out, const std::string& checkpoint_dir,
                  const std::function<void(const std::string&)>& write) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(fs::symlink_status(out, ec)))
    throw UserError(out +
                    ": exists; ckpt export writes a new file or folder (remove it, or choose another name)");
  refuse_output_over_input(out, "the export", {checkpoint_dir});
  const fs::path parent = fs::path(out).parent_path();
  require_dir(parent.empty() ? "." : parent.string(), "folder of the export");
  const std::string aside = out + ".kervan-export-" + std::to_string(getpid());
  try {
    write(aside);
    fs::rename(aside, out);
  } catch (...) {
    fs::remove_all(aside, ec);
    throw;
  }
}

}  // namespace

int CkptCommand::run() const {
  if (inspect_->parsed()) return inspect();
  if (verify_->parsed()) return verify();
  auto be = make_cpu_backend();
  if (export_->parsed()) {
    const CheckpointReader checkpoint(resolve_checkpoint_folder(dir_, "ckpt export"));
    const Gpt2Weights w = read_checkpoint_weights(checkpoint, *be);
    write_export(out_, dir_, [&](const std::string& aside) {
      if (format_ == "hf")
        write_hf_gpt2(aside, w);
      else
        write_llmc_gpt2(aside, w);
    });
    std::printf("exported %s (step %lld) to %s\n", checkpoint.folder().c_str(),
                static_cast<long long>(checkpoint.manifest().step), out_.c_str());
    return 0;
  }
  const Gpt2Weights w = format_ == "hf" ? read_hf_gpt2(in_) : read_llmc_gpt2(in_);
  write_weights_checkpoint(dir_, w, *be);
  std::printf("imported %s into %s (step 0; start a run from it with checkpoint.init_from)\n", in_.c_str(),
              step_folder(dir_, 0).c_str());
  return 0;
}

int CkptCommand::inspect() const {
  const CheckpointReader checkpoint(resolve_checkpoint_folder(dir_, "ckpt inspect"));
  const Manifest& m = checkpoint.manifest();
  int64_t bytes = 0;
  for (const SavedFile& f : m.files) bytes += f.bytes;
  const auto tensors = summarize(m);
  if (json_) {
    json j = {{"folder", checkpoint.folder()},
              {"step", m.step},
              {"format_version", m.format_version},
              {"kervan_version", m.kervan_version},
              {"git_commit", m.git_commit},
              {"created", m.created},
              {"layout",
               {{"world_size", m.layout.world_size},
                {"dp", m.layout.dp},
                {"tp", m.layout.tp},
                {"zero1", m.layout.zero1}}},
              {"files", m.files.size()},
              {"bytes", bytes},
              {"values", json::object()},
              {"tensors", json::array()}};
    for (const auto& [key, v] : m.values) j["values"][key] = value_json(v);
    for (const auto& [name, s] : tensors)
      j["tensors"].push_back(
          {{"name", name}, {"shape", s.shape}, {"dtype", dtype_name(s.dtype)}, {"slices", s.slices}});
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("checkpoint %s\n", checkpoint.folder().c_str());
  std::printf("  step %lld, written by %s, %zu files, %.1f MB\n", static_cast<long long>(m.step),
              m.layout.describe().c_str(), m.files.size(), bytes / 1e6);
  std::printf("  format %d, kervan %s (commit %s), %s\n", m.format_version, m.kervan_version.c_str(),
              m.git_commit.c_str(), m.created.c_str());
  std::printf("values:\n");
  for (const auto& [key, v] : m.values) {
    std::string text = value_json(v).dump();
    if (text.size() > 200) text = text.substr(0, 200) + "...";
    std::printf("  %s = %s\n", key.c_str(), text.c_str());
  }
  std::printf("tensors (%zu, in %zu slices):\n", tensors.size(), m.tensors.size());
  for (const auto& [name, s] : tensors)
    std::printf("  %-40s %-16s %s  %d slice%s\n", name.c_str(), shape_str(s.shape).c_str(),
                std::string(dtype_name(s.dtype)).c_str(), s.slices, s.slices == 1 ? "" : "s");
  return 0;
}

int CkptCommand::verify() const {
  const CheckpointReader checkpoint(resolve_checkpoint_folder(dir_, "ckpt verify"));
  const std::vector<Damage> damage = verify_checkpoint(checkpoint);
  for (const Damage& d : damage) std::fprintf(stderr, "kervan: damaged: %s\n", d.describe().c_str());
  if (!damage.empty()) return 1;
  std::printf("ok: %s: %zu files, %zu tensor slices verified\n", checkpoint.folder().c_str(),
              checkpoint.manifest().files.size(), checkpoint.manifest().tensors.size());
  return 0;
}

}  // namespace kervan
