#include "launcher/study_cmd.h"

#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/reader.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "core/error.h"
#include "datasets/loader/token_source.h"
#include "launcher/model_setup.h"
#include "launcher/run_checkpoints.h"

namespace kervan {

namespace fs = std::filesystem;

namespace {

// The whole validation split of the run's (first) corpus, as one token stream.
struct ValTokens {
  std::vector<int32_t> tokens;
  int64_t eot = -1;
};

ValTokens read_val_split(const RunConfig& cfg) {
  if (cfg.data.paths.empty())
    throw UserError(cfg.file + ": data.path is not set (the study reads its 'val' split)");
  const std::string& path = cfg.data.paths.front();
  TokenSource source(path, "train", cfg.model.vocab_size);
  if (!source.is_corpus() || !source.has_split("val"))
    throw UserError(path +
                    ": the study needs a kervan corpus with a validation split ('val'; kervan prepare "
                    "--val-documents N)");
  TokenSource val(path, "val", cfg.model.vocab_size);
  ValTokens out;
  out.eot = static_cast<int64_t>(val.tokenizer().eot_id);
  for (const TokenSpan& s : val.spans())
    for (uint64_t i = 0; i < s.count; ++i)
      out.tokens.push_back(s.token_bytes == 2
                               ? static_cast<const uint16_t*>(s.data)[i]
                               : static_cast<int32_t>(static_cast<const uint32_t*>(s.data)[i]));
  return out;
}

// The run's model for micro-batches of `max_batch`, with the checkpoint's weights, or (no
// checkpoint) with those train.seed draws, as `kervan train` starts.
struct LoadedModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  int64_t step = 0;  // the checkpoint's; 0 at initialisation
};

LoadedModel load_model(const RunConfig& cfg, int64_t max_batch, const std::string& checkpoint) {
  set_host_threads(cfg.train.threads > 0 ? static_cast<int>(cfg.train.threads) : omp_get_num_procs());
  LoadedModel m;
  m.backend = make_cpu_backend();
  m.model = make_model(cfg, *m.backend, max_batch, nullptr);
  m.model->init_weights(static_cast<uint64_t>(cfg.train.seed));
  if (checkpoint.empty()) return m;
  const CheckpointReader reader(resolve_checkpoint_folder(checkpoint, "--checkpoint"));
  check_same_model(reader, cfg, "--checkpoint");
  StateDict state, weights;
  m.model->state(state);
  for (const StateTensor& t : state.tensors) {
    if (!t.name.starts_with("model/")) continue;  // a carried hidden state starts from zeros
    if (!reader.has(t.name))
      throw UserError("--checkpoint " + reader.folder() + " has no tensor " + t.name +
                      ": it holds another model than " + cfg.file + "'s");
    weights.tensors.push_back(t);
  }
  reader.read_tensors(weights, *m.backend);
  m.model->load_state(state);
  m.step = reader.manifest().step;
  return m;
}

int print_json(const nlohmann::json& j) {
  std::printf("%s\n", j.dump(1).c_str());
  return kExitOk;
}

}  // namespace

StudyCommand::StudyCommand(CLI::App& app) {
  cmd_ = app.add_subcommand("study",
                            "Studies that train several models and measure them (docs/recurrent-study.md)");
  cmd_->require_subcommand(1);
  recurrent_ = cmd_->add_subcommand(
      "recurrent",
      "GPT, LSTM, GRU and RNN of equal parameter count: speed, loss, gradient norms through "
      "time, a long-dependency probe; one JSON file and plots");
  recurrent_->add_option("--config", study_config_, "The study's config (TOML, a [study] table)")->required();
  recurrent_->add_flag("--probe-only", probe_only_, "Run the long-dependency probe alone (OUT/probe.json)");
  grad_norms_ = cmd_->add_subcommand(
      "grad-norms", "Norms of d(loss at the last position)/d(state) at each position back from it (JSON)");
  grad_norms_->add_option("--config", run_config_, "The run's config (kervan train's)")->required();
  grad_norms_->add_option("--checkpoint", checkpoint_,
                          "A checkpoint of the run (default: the weights at initialisation)");
  grad_norms_->add_option("--batches", batches_, "Validation micro-batches to average over (default 4)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  recall_ = cmd_->add_subcommand(
      "recall", "Accuracy of predicting each validation document's last token from the rest (JSON)");
  recall_->add_option("--config", run_config_, "The run's config (kervan train's)")->required();
  recall_->add_option("--checkpoint", checkpoint_, "A checkpoint of the run")->required();
  recall_->add_option("--documents", documents_, "Documents to score (default 0: all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
}

int StudyCommand::run() const {
  if (recurrent_->parsed()) return run_recurrent();
  if (grad_norms_->parsed()) return run_grad_norms();
  return run_recall();
}

// The driver lives in the source tree (bench/); it is run with Debian's python3 (tomllib), and
// told which kervan binary to call back.
int StudyCommand::run_recurrent() const {
  const fs::path script = fs::path(KERVAN_SOURCE_DIR) / "bench" / "recurrent_study.py";
  if (!fs::is_regular_file(script))
    throw EnvironmentError(
        "kervan study recurrent", script.string(),
        "the study's driver is missing (it runs from the source tree kervan was built from)");
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> args{"/usr/bin/python3", script.string(), "--kervan", self,
                                "--config",         study_config_};
  if (probe_only_) args.emplace_back("--probe-only");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  execv(argv[0], argv.data());
  throw EnvironmentError("kervan study recurrent", "/usr/bin/python3", std::strerror(errno));
}

int StudyCommand::run_grad_norms() const {
  const RunConfig cfg = load_run_config(run_config_, {});
  const int64_t B = cfg.train.micro_batch, T = cfg.train.seq_len;
  const ValTokens val = read_val_split(cfg);
  const int64_t windows = val.tokens.empty() ? 0 : (static_cast<int64_t>(val.tokens.size()) - 1) / T;
  if (windows < B * batches_)
    throw UserError(
        fmt::format("{}: the validation split of {} has {} windows of {} tokens; --batches {} of "
                    "train.micro_batch {} need {}",
                    run_config_, cfg.data.paths.front(), windows, T + 1, batches_, B, B * batches_));
  LoadedModel m = load_model(cfg, B, checkpoint_);
  Model& model = *m.model;
  model.record_position_grad_norms(true);
  std::vector<double> mean(T, 0.0);
  std::vector<int32_t> tokens(B * T), targets(B * T);
  for (int64_t i = 0; i < batches_; ++i) {
    // Windows as the trainer cuts them (window w starts at w * T); only the last position predicts.
    for (int64_t b = 0; b < B; ++b) {
      const int64_t start = (i * B + b) * T;
      for (int64_t t = 0; t < T; ++t) {
        tokens[b * T + t] = val.tokens[start + t];
        targets[b * T + t] = t == T - 1 ? val.tokens[start + T] : -1;
      }
    }
    model.forward(tokens.data(), targets.data(), B, T);
    model.backward(1.0f);
    const std::vector<double> norms = model.position_grad_norms();
    if (static_cast<int64_t>(norms.size()) != T)
      throw UserError(cfg.file + ": model.arch \"" + cfg.arch +
                      "\" does not record gradient norms per position (GPT and the recurrent families do)");
    for (int64_t k = 0; k < T; ++k) mean[k] += norms[k] / static_cast<double>(batches_);
  }
  return print_json({{"arch", cfg.arch},
                     {"checkpoint", checkpoint_},
                     {"step", m.step},
                     {"batches", batches_},
                     {"micro_batch", B},
                     {"norms", mean}});
}

int StudyCommand::run_recall() const {
  const RunConfig cfg = load_run_config(run_config_, {});
  const ValTokens val = read_val_split(cfg);
  LoadedModel m = load_model(cfg, 1, checkpoint_);
  Model& model = *m.model;
  if (!model.can_generate())
    throw UserError(cfg.file + ": model.arch \"" + cfg.arch + "\" does not predict next tokens");
  std::vector<float> logits(model.logits_width());
  int64_t scored = 0, correct = 0, skipped = 0;
  double nats = 0.0, probability = 0.0;  // summed over the scored documents
  size_t begin = 0;
  for (size_t i = 0; i < val.tokens.size(); ++i) {
    if (val.tokens[i] != val.eot) continue;
    const int64_t n = static_cast<int64_t>(i - begin);  // the document's tokens, end-of-text excluded
    const int32_t* doc = val.tokens.data() + begin;
    begin = i + 1;
    if (n < 2 || n - 1 > model.max_context()) {
      ++skipped;
      continue;
    }
    model.next_token_logits(doc, n - 1, logits.data());
    const auto top = std::max_element(logits.begin(), logits.begin() + model.vocab_size());
    correct += top - logits.begin() == doc[n - 1];
    // The cross-entropy of the right token, which moves before the argmax does.
    double sum = 0.0;
    for (int64_t v = 0; v < model.vocab_size(); ++v) sum += std::exp(static_cast<double>(logits[v] - *top));
    const double log_p = static_cast<double>(logits[doc[n - 1]] - *top) - std::log(sum);
    nats -= log_p;
    probability += std::exp(log_p);
    if (++scored == documents_) break;
  }
  if (scored == 0)
    throw UserError(
        fmt::format("{}: no validation document of {} fits train.seq_len {} (2 to {} tokens before the "
                    "end-of-text)",
                    run_config_, cfg.data.paths.front(), cfg.train.seq_len, cfg.train.seq_len + 1));
  return print_json({{"arch", cfg.arch},
                     {"checkpoint", checkpoint_},
                     {"step", m.step},
                     {"documents", scored},
                     {"skipped", skipped},
                     {"correct", correct},
                     {"accuracy", static_cast<double>(correct) / static_cast<double>(scored)},
                     {"loss", nats / static_cast<double>(scored)},
                     {"probability", probability / static_cast<double>(scored)}});
}

}  // namespace kervan
