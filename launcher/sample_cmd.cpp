#include "launcher/sample_cmd.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/gpt2_weights.h"
#include "checkpoint/reader.h"
#include "launcher/cli_checks.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "core/error.h"
#include "core/model/generate.h"
#include "datasets/loader/token_source.h"
#include "launcher/job.h"
#include "launcher/model_setup.h"
#include "launcher/text_codec.h"
#include "parallel/tensor_parallel.h"

namespace kervan {

namespace {

// A value of the resolved config a checkpoint records ("run/config": key=value lines, strings as
// LENGTH:TEXT, lists as [LENGTH:TEXT,...]); "" when absent.
std::string recorded(const Manifest& m, const std::string& key) {
  const auto it = m.values.find("run/config");
  if (it == m.values.end()) return "";
  const auto* text = std::get_if<std::string>(&it->second);
  if (!text) return "";
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with(key + "=")) return line.substr(key.size() + 1);
  return "";
}

// "3:abc" -> "abc"; "[3:abc,2:de,]" -> "abc" (the first)
std::string first_string(std::string v) {
  if (v.starts_with("[")) v = v.substr(1);
  const auto colon = v.find(':');
  if (colon == std::string::npos) return "";
  const size_t n = std::stoul(v.substr(0, colon));
  return v.substr(colon + 1, n);
}

// "24 tokens in 0.31 s, 77.4 tokens/s (prefill: 10 prompt tokens in 0.012 s, 833 tokens/s;
// decode: 23 tokens in 0.30 s, 76.7 tokens/s with the KV cache)"
std::string describe_speed(const GenerateStats& s, bool kv_cache, int64_t window) {
  const int64_t made = s.decode_tokens + 1;
  const double total = s.prefill_s + s.decode_s;
  std::string out = fmt::format(
      "{} tokens in {:.2f} s, {:.1f} tokens/s (prefill: {} prompt tokens in {:.3f} s, "
      "{:.0f} tokens/s",
      made, total, made / total, s.prompt_tokens, s.prefill_s, s.prompt_tokens / s.prefill_s);
  if (s.decode_tokens > 0)
    out += fmt::format("; decode: {} tokens in {:.2f} s, {:.1f} tokens/s", s.decode_tokens, s.decode_s,
                       s.decode_tokens / s.decode_s);
  if (!kv_cache)
    out += ", no KV cache: every token recomputes the context";
  else if (s.recomputed > 0)
    out += fmt::format(" with the KV cache; the last {} recomputed the sliding {}-token window", s.recomputed,
                       window);
  else
    out += " with the KV cache";
  return out + ")";
}

}  // namespace

SampleCommand::SampleCommand(CLI::App& app) {
  cmd_ = app.add_subcommand("sample", "Generate text from a GPT checkpoint");
  cmd_->add_option("--checkpoint", dir_, "A step folder, or a checkpoint folder (its newest checkpoint)")
      ->required();
  cmd_->add_option("--prompt", prompt_, "The text to continue (default: a new line)");
  cmd_->add_option("--tokens", tokens_, "Tokens to generate (default 100)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd_->add_option("--temperature", temperature_, "Sampling temperature; 0 is greedy (default 1)")
      ->check(FiniteRange(0.0, 1e6));
  cmd_->add_option("--top-k", top_k_, "Sample among the k most likely tokens (default 0: all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 31));
  cmd_->add_option("--top-p", top_p_,
                   "Nucleus: the most likely tokens whose probabilities add up to p (default 1)")
      ->check(FiniteRange(1e-6, 1.0));
  cmd_->add_option("--seed", seed_, "Seed of the draws (default 1337): the same seed, the same text");
  cmd_->add_option("--tokenizer", tokenizer_,
                   "gpt2, bytes, none (ids) or a tokenizer folder (default: the training corpus's)");
  cmd_->add_flag("--ids", ids_, "Also print the generated token ids (one line, to stdout)");
  cmd_->add_flag("--no-kv-cache", no_kv_cache_,
                 "Recompute the whole context for every token instead of caching keys and values");
  cmd_->add_option("--threads", threads_,
                   "Threads per process (default: the cores, shared by the ranks on a node)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
}

int SampleCommand::run() const {
  const std::string folder = resolve_checkpoint_folder(dir_, "--checkpoint");
  const CheckpointReader checkpoint(folder);
  const Manifest& m = checkpoint.manifest();
  const std::string arch = first_string(recorded(m, "model.arch"));
  if (!arch.empty() && arch != "gpt")
    throw UserError(folder + ": a " + arch + " checkpoint; kervan sample generates with GPT models");
  RunConfig c;
  c.file = folder;
  c.model = gpt_config_of(checkpoint);
  c.train.seq_len = c.model.max_seq_len;
  c.train.micro_batch = 1;

  // The tokenizer: the flag, else the run's data.tokenizer, else its corpus's.
  std::string tokenizer = tokenizer_;
  if (tokenizer.empty()) tokenizer = first_string(recorded(m, "data.tokenizer"));
  if (tokenizer.empty()) {
    const std::string data = first_string(recorded(m, "data.path"));
    try {
      tokenizer = TokenSource(data, "train", c.model.vocab_size, Verify::HeaderOnly).tokenizer().name;
    } catch (const UserError&) {
    }
    if (tokenizer.empty())
      throw UserError(folder + ": the checkpoint does not say which tokenizer its corpus (" +
                      (data.empty() ? std::string("unknown") : data) + ") used; pass --tokenizer");
  }
  const TextCodec codec(tokenizer);
  std::vector<int32_t> prompt = codec.encode(prompt_);
  if (prompt.empty()) prompt.push_back(codec.eot() >= 0 ? static_cast<int32_t>(codec.eot()) : 0);
  for (const int32_t id : prompt)
    if (id >= c.model.vocab_size)
      throw UserError("--prompt encodes to token " + std::to_string(id) + " (tokenizer " + codec.name() +
                      "), outside the model's vocabulary of " + std::to_string(c.model.vocab_size));

  // Under mpirun the ranks split the model (tensor parallel, each its heads' KV cache); the
  // checkpoint's tensors are read into whatever slices this layout gives each rank.
  Job job = start_job(c, /*tp_over_world=*/true);
  set_host_threads(threads_ > 0 ? static_cast<int>(threads_)
                                : std::max(1, omp_get_num_procs() / std::max(1, job.node->size())));
  auto be = make_cpu_backend();
  CommunicatorTpGroup tp(*job.tp);
  std::unique_ptr<Model> model;
  try {
    model = make_model(c, *be, 1, job.grid.tp > 1 ? &tp : nullptr);
  } catch (const UserError& e) {
    if (job.grid.tp == 1) throw;
    throw UserError("kervan sample under " + std::to_string(job.grid.tp) +
                    " processes splits the model over them (tensor parallel), and " + e.what());
  }
  StateDict state;
  model->state(state);
  checkpoint.read_tensors(state, *be);
  model->load_state(state);

  SampleOptions so{tokens_, temperature_, top_k_, static_cast<uint64_t>(seed_)};
  so.top_p = top_p_;
  so.kv_cache = !no_kv_cache_;
  GenerateStats stats;
  const std::vector<int32_t> out = generate(*model, prompt, c.train.seq_len, so, &stats);
  if (!job.leader()) return 0;
  std::printf("%s\n", codec.decode(out).c_str());
  if (ids_) {
    std::string ids;
    for (size_t i = prompt.size(); i < out.size(); ++i)
      ids += (ids.empty() ? "" : " ") + std::to_string(out[i]);
    std::printf("ids: %s\n", ids.c_str());
  }
  std::fprintf(
      stderr, "kervan sample: %s (step %lld, written by %s), %s: %s\n", folder.c_str(),
      static_cast<long long>(m.step), m.layout.describe().c_str(),
      job.grid.tp > 1 ? fmt::format("tensor parallel over {} ranks", job.grid.tp).c_str() : "one process",
      describe_speed(stats, so.kv_cache, c.train.seq_len).c_str());
  return 0;
}

}  // namespace kervan
