#include "launcher/config_keys.h"

#include <charconv>
#include <cmath>

namespace kervan {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMaxInt32 = 2147483647.0;

Bounds at_least(double min) {
  return {min, kInf, false, false};
}
Bounds range(double min, double max) {
  return {min, max, false, false};
}
Bounds above(double min) {
  return {min, kInf, true, false};
}
Bounds above_below(double min, double max) {
  return {min, max, true, true};
}
Bounds at_least_below(double min, double max) {
  return {min, max, false, true};
}

// The key list. Order: as documented (and hashed).
std::vector<ConfigKey> make_keys() {
  using C = RunConfig;
  return {
      {"model.arch", "string", "",
       "the model family: `gpt`, `bert` (masked-LM pretraining, docs/bert.md), `t5` (span corruption, "
       "docs/t5.md), or the recurrent `rnn`, `lstm`, `gru` (docs/recurrent.md)",
       [](C& c) -> ConfigField { return &c.arch; }},
      {"model.preset", "string", "none",
       "`gpt2-tiny`, `gpt2-small`, `gpt2-medium`, `gpt2-large`, `gpt2-xl`; `bert-tiny`, `bert-mini`, "
       "`bert-base`, `bert-large`; `t5-tiny`, `t5-small`, `t5-base`; `rnn-tiny`, `lstm-tiny`, `gru-tiny`, "
       "`rnn-small`, `lstm-small`, `gru-small` (of the family model.arch names); the shape keys below "
       "override it",
       [](C& c) -> ConfigField { return &c.preset; }},
      {"model.n_layer", "int", "preset", "transformer blocks (recurrent families: recurrent layers)",
       [](C& c) -> ConfigField { return &c.model.n_layer; }, range(1, 4096)},
      {"model.n_head", "int", "preset",
       "attention heads; must divide model.d_model (not for the recurrent families)",
       [](C& c) -> ConfigField { return &c.model.n_head; }, range(1, 4096)},
      {"model.d_model", "int", "preset", "model width (recurrent families: hidden units of every layer)",
       [](C& c) -> ConfigField { return &c.model.d_model; }, range(1, 1 << 20)},
      {"model.vocab_size", "int", "preset",
       "vocabulary (padded internally to a multiple of 128; padding is never predicted)",
       [](C& c) -> ConfigField { return &c.model.vocab_size; }, range(1, kMaxInt32 - 127)},
      {"model.max_seq_len", "int", "preset, else train.seq_len",
       "rows of the position table (GPT, BERT; T5 has relative positions instead, the recurrent families "
       "none)",
       [](C& c) -> ConfigField { return &c.model.max_seq_len; }, range(1, 1 << 24)},
      {"model.t5_ffn", "string", "",
       "T5 only: `relu` (T5 v1.0: ReLU feed-forward, LM head tied to the shared embedding) or `gated-gelu` "
       "(v1.1: gated GELU feed-forward, an LM head of its own)",
       [](C& c) -> ConfigField { return &c.t5_ffn; }},
      {"model.tied", "bool", "",
       "rnn, lstm, gru only: the output layer is the token embedding (false: a matrix of its own)",
       [](C& c) -> ConfigField { return &c.recurrent.tied; }},
      {"model.residual", "bool", "",
       "rnn, lstm, gru only: each layer adds its input to its output (x + layer(x))",
       [](C& c) -> ConfigField { return &c.recurrent.residual; }},
      {"model.carry_state", "bool", "",
       "rnn, lstm, gru only: each batch row reads consecutive windows of its own stretch of the corpus "
       "and starts from the hidden state the previous window left (truncated backpropagation through "
       "time); needs one data.path and train.grad_accum = 1",
       [](C& c) -> ConfigField { return &c.recurrent.carry_state; }},
      {"data.path",
       "string or list",
       "required (unless data.coordinator)",
       "a kervan corpus folder (made by `kervan prepare`; its `train` split is read) or an llm.c `.bin` "
       "token "
       "file; a list blends several",
       [](C& c) -> ConfigField { return &c.data.paths; },
       {}},
      {"data.weights", "float or list", "tokens of each source",
       "blend weights, one per `data.path` (normalised; `[0.7, 0.3]` draws 70% of samples from the first)",
       [](C& c) -> ConfigField { return &c.data.weights; }, above(0)},
      {"data.tokenizer", "string", "the corpus's",
       "how the sample prompt is encoded and samples shown: `gpt2`, a tokenizer folder, `bytes` or `none` "
       "(ids); "
       "llm.c files default to `none`",
       [](C& c) -> ConfigField { return &c.data.tokenizer; }},
      {"data.whole_word_masking", "int", "",
       "BERT only: 1 predicts whole words (every piece of a chosen word), 0 single tokens",
       [](C& c) -> ConfigField { return &c.data.whole_word_masking; }, range(0, 1)},
      {"data.coordinator", "string", "none",
       "`HOST:PORT` of a `kervan coordinator`: the corpora come from it (fetched into `data.cache_dir`, "
       "verified, prefetched) instead of from disk, and `data.path` names served corpora (default: all, in "
       "the coordinator's order); losses equal reading the folders",
       [](C& c) -> ConfigField { return &c.data.coordinator; }},
      {"data.coordinator_job", "string", "", "the job id the coordinator serves (its `--job`)",
       [](C& c) -> ConfigField { return &c.data.coordinator_job; }},
      {"data.coordinator_timeout_s", "float", "",
       "how long an unreachable coordinator is retried (with back-off) before the run stops, naming it",
       [](C& c) -> ConfigField { return &c.data.coordinator_timeout_s; }, above_below(0, 1e7), false},
      {"data.cache_dir",
       "string",
       "`~/.cache/kervan/tokens`",
       "where a process keeps the token data it fetched from the coordinator (a folder per job and rank, "
       "emptied at start)",
       [](C& c) -> ConfigField { return &c.data.cache_dir; },
       {},
       false},
      {"data.cache_gb", "float", "", "the most token data a process keeps in `data.cache_dir` (GB)",
       [](C& c) -> ConfigField { return &c.data.cache_gb; }, above_below(0, 1e6), false},
      {"data.read_ahead", "int", "", "batches fetched from the coordinator ahead of training",
       [](C& c) -> ConfigField { return &c.data.read_ahead; }, range(0, 1 << 20), false},
      {"train.steps", "int", "required", "optimizer steps",
       [](C& c) -> ConfigField { return &c.train.steps; }, range(1, 1e12)},
      {"train.micro_batch", "int", "required", "sequences per process per micro-step",
       [](C& c) -> ConfigField { return &c.train.micro_batch; }, range(1, 1 << 20)},
      {"train.seq_len", "int", "required", "tokens per sequence",
       [](C& c) -> ConfigField { return &c.train.seq_len; }, range(1, 1 << 24)},
      {"train.grad_accum", "int", "", "micro-steps per optimizer step",
       [](C& c) -> ConfigField { return &c.train.grad_accum; }, range(1, 1 << 20)},
      {"train.seed", "int", "", "initialisation and data order",
       [](C& c) -> ConfigField { return &c.train.seed; }, at_least(0)},
      {"train.lr", "float", "", "peak learning rate", [](C& c) -> ConfigField { return &c.train.lr; },
       above(0)},
      {"train.min_lr", "float", "train.lr / 10", "final learning rate (at most train.lr)",
       [](C& c) -> ConfigField { return &c.train.min_lr; }, at_least(0)},
      {"train.warmup_steps", "int", "", "linear warm-up steps (at most train.steps)",
       [](C& c) -> ConfigField { return &c.train.warmup_steps; }, at_least(0)},
      {"train.schedule",
       "string",
       "",
       "`cosine`, `constant`, or `wsd` (warm-up, stable, linear decay over `train.decay_steps`)",
       [](C& c) -> ConfigField { return &c.train.schedule; },
       {}},
      {"train.decay_steps", "int", "", "length of the wsd decay (at most train.steps)",
       [](C& c) -> ConfigField { return &c.train.decay_steps; }, at_least(0)},
      {"train.weight_decay", "float", "",
       "AdamW decoupled decay, on weight matrices and the token embedding only",
       [](C& c) -> ConfigField { return &c.train.weight_decay; }, at_least(0)},
      {"train.beta1", "float", "", "AdamW first-moment decay",
       [](C& c) -> ConfigField { return &c.train.beta1; }, at_least_below(0, 1)},
      {"train.beta2", "float", "", "AdamW second-moment decay",
       [](C& c) -> ConfigField { return &c.train.beta2; }, at_least_below(0, 1)},
      {"train.eps", "float", "", "AdamW denominator term", [](C& c) -> ConfigField { return &c.train.eps; },
       above(0)},
      {"train.grad_clip", "float", "", "global-norm clip (0: off)",
       [](C& c) -> ConfigField { return &c.train.grad_clip; }, at_least(0)},
      {"train.threads", "int", "0 (all cores)", "OpenMP / OpenBLAS threads per process",
       [](C& c) -> ConfigField { return &c.train.threads; }, range(0, 1024)},
      {"train.device",
       "string",
       "",
       "`cpu`, or `cuda` (docs/gpu.md); without a GPU or a CUDA build it "
       "exits 2",
       [](C& c) -> ConfigField { return &c.train.device; },
       {}},
      {"train.precision",
       "string",
       "",
       "of matrix products: `fp32`, or `bf16` (operands rounded to bfloat16, fp32 accumulation: the tensor "
       "cores; `train.device = \"cuda\"` only). Weights, gradients and optimizer state stay fp32",
       [](C& c) -> ConfigField { return &c.train.precision; },
       {}},
      {"train.deterministic",
       "bool",
       "false",
       "leave out what could make the same run twice differ in its last bits beyond the defaults: on "
       "`cuda`, split-K matrix products, and NCCL's choice of algorithm (pinned to Ring, Simple; docs/gpu.md says "
       "what the default already guarantees); on the CPU "
       "nothing, as its kernels are deterministic for a fixed train.threads",
       [](C& c) -> ConfigField { return &c.train.deterministic; },
       {}},
      {"train.eval_every", "int", "0 (off)",
       "validation loss every N steps and after the last, on the `val` split of every `data.path` that has "
       "one: "
       "`val_loss` is their mean weighted like the blend, `val_losses` each source's (when there are "
       "several)",
       [](C& c) -> ConfigField { return &c.train.eval_every; }, at_least(0)},
      {"train.eval_batches", "int", "",
       "global batches per validation (the same unshuffled windows every time)",
       [](C& c) -> ConfigField { return &c.train.eval_batches; }, range(1, 1 << 20)},
      {"train.max_bad_steps", "int", "",
       "steps in a row with a non-finite loss or gradient norm (each is skipped: no update, counted as "
       "`bad_steps` in the metrics) after which the run stops, saving the last good state",
       [](C& c) -> ConfigField { return &c.train.max_bad_steps; }, range(1, 1e9)},
      {"parallel.tp", "int", "",
       "tensor-parallel size (Megatron-style: heads, MLP columns and vocabulary split over tp consecutive "
       "ranks); "
       "DP = processes / tp. tp must divide the number of processes, `model.n_head` and the padded "
       "vocabulary "
       "(vocab_size rounded up to 128)",
       [](C& c) -> ConfigField { return &c.parallel.tp; }, range(1, 65536)},
      {"parallel.zero", "int", "",
       "1: ZeRO-1, AdamW state sharded over the data-parallel group (gradients reduce-scattered after "
       "backward)",
       [](C& c) -> ConfigField { return &c.parallel.zero; }, range(0, 1)},
      {"parallel.bucket_mb", "float", "", "data-parallel gradient all-reduce bucket size",
       [](C& c) -> ConfigField { return &c.parallel.bucket_mb; }, above_below(0, 1e6)},
      {"parallel.coordinator", "string", "none",
       "`embedded`: rank 0 runs a coordinator on a background thread serving `data.path`, and every rank "
       "reads through it (journal, token and address under `data.cache_dir`)",
       [](C& c) -> ConfigField { return &c.parallel.coordinator; }},
      {"parallel.collective_timeout_s", "float", "",
       "a collective that takes longer ends the job, naming the ranks that did not arrive",
       [](C& c) -> ConfigField { return &c.parallel.collective_timeout_s; }, above_below(0, 1e7), false},
      {"log.metrics_file",
       "string",
       "none",
       "JSON-lines metrics, one line per step (written by rank 0)",
       [](C& c) -> ConfigField { return &c.log.metrics_file; },
       {},
       false},
      {"log.every", "int", "", "console line every N steps", [](C& c) -> ConfigField { return &c.log.every; },
       range(1, 1e12), false},
      {"finetune.task", "string", "none",
       "`kervan finetune` only: `classify` (fields `text`, `label`; a head on BERT's [CLS] or GPT's last "
       "token) or `text2text` (fields `input`, `target`; T5, or GPT with the target as continuation)",
       [](C& c) -> ConfigField { return &c.finetune.task; }},
      {"finetune.train", "string", "required by finetune", "JSON-lines file of training examples",
       [](C& c) -> ConfigField { return &c.finetune.train; }},
      {"finetune.val", "string", "none",
       "JSON-lines file of validation examples (accuracy, per-class precision and recall; or exact match)",
       [](C& c) -> ConfigField { return &c.finetune.val; }},
      {"finetune.labels", "list of strings", "the training file's, sorted",
       "classify: the label set; a label outside it is an error",
       [](C& c) -> ConfigField { return &c.finetune.labels; }},
      {"finetune.init_from", "string", "none",
       "start from the model weights of this checkpoint (a step folder, or a checkpoint folder: its newest), "
       "e.g. one `kervan train` saved, of the same family and shape; the new classification head starts from "
       "its initialisation, the optimizer fresh (a resumed fine-tuning run reads its own checkpoint instead)",
       [](C& c) -> ConfigField { return &c.finetune.init_from; }},
      {"finetune.max_target_len", "int", "", "text2text: target tokens (T5's decoder length)",
       [](C& c) -> ConfigField { return &c.finetune.max_target_len; }, range(2, 1 << 16)},
      {"finetune.show", "int", "", "text2text: generated validation outputs shown after training",
       [](C& c) -> ConfigField { return &c.finetune.show; }, range(0, 1 << 20), false},
      {"checkpoint.dir",
       "string",
       "none",
       "folder of this run's checkpoints (`step_NNNNNNNN/` folders and `latest`; docs/checkpoint-format.md); "
       "locked while the run writes into it",
       [](C& c) -> ConfigField { return &c.checkpoint.dir; },
       {}},
      {"checkpoint.every", "int", "0 (at the end only)", "save every N steps, and always after the last step",
       [](C& c) -> ConfigField { return &c.checkpoint.every; }, at_least(0)},
      {"checkpoint.keep_last", "int", "", "committed checkpoints kept (older ones are deleted)",
       [](C& c) -> ConfigField { return &c.checkpoint.keep_last; }, range(1, 1e9)},
      {"checkpoint.keep_every", "int", "0 (none)", "steps that are a multiple of N are also kept, forever",
       [](C& c) -> ConfigField { return &c.checkpoint.keep_every; }, at_least(0)},
      {"checkpoint.async",
       "bool",
       "",
       "copy the state at the step boundary and write it on a background thread while training goes on",
       [](C& c) -> ConfigField { return &c.checkpoint.async; },
       {}},
      {"checkpoint.resume",
       "string",
       "",
       "`auto`: continue from the newest intact checkpoint in checkpoint.dir (start fresh when there is "
       "none); `none`: start fresh (refused when checkpoint.dir holds checkpoints); or a path: that step "
       "folder, or the newest checkpoint in that folder",
       [](C& c) -> ConfigField { return &c.checkpoint.resume; },
       {}},
      {"checkpoint.strict",
       "bool",
       "",
       "a damaged newest checkpoint stops the run instead of falling back (with a warning) to the one before",
       [](C& c) -> ConfigField { return &c.checkpoint.strict; },
       {}},
      {"checkpoint.init_from",
       "string",
       "none",
       "when not resuming, start from this checkpoint's model weights with a fresh optimizer and step 0 "
       "(e.g. "
       "one made by `kervan ckpt import` from Hugging Face or llm.c GPT-2 weights)",
       [](C& c) -> ConfigField { return &c.checkpoint.init_from; },
       {}},
      {"checkpoint.on_failure",
       "string",
       "",
       "what a failed save (a full disk, ...) does: `stop` ends the run (exit 4), `continue` warns and "
       "trains "
       "on; the checkpoints before it stay intact either way",
       [](C& c) -> ConfigField { return &c.checkpoint.on_failure; },
       {}},
      {"sample.tokens", "int", "0 (none)", "tokens to generate after training",
       [](C& c) -> ConfigField { return &c.sample.tokens; }, range(0, 1 << 20)},
      {"sample.prompt",
       "string",
       "",
       "prompt, encoded with `data.tokenizer`",
       [](C& c) -> ConfigField { return &c.sample.prompt; },
       {}},
      {"sample.temperature", "float", "", "sampling temperature (0: greedy)",
       [](C& c) -> ConfigField { return &c.sample.temperature; }, range(0, 1e6)},
      {"sample.top_k", "int", "0 (all)", "sample among the k most likely tokens",
       [](C& c) -> ConfigField { return &c.sample.top_k; }, range(0, kMaxInt32)},
      {"sample.top_p",
       "float",
       "",
       "nucleus sampling: among the most likely tokens whose probabilities add up to p",
       [](C& c) -> ConfigField { return &c.sample.top_p; },
       {0, 1, true, false}},
      {"sample.every", "int", "0 (never)",
       "also print a sample (sample.tokens tokens) every N steps during training",
       [](C& c) -> ConfigField { return &c.sample.every; }, at_least(0)},
  };
}

template <typename T>
std::string shortest(T v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string exact(const ConfigField& f) {
  struct {
    std::string operator()(const bool* v) const { return *v ? "true" : "false"; }
    std::string operator()(const int* v) const { return std::to_string(*v); }
    std::string operator()(const int64_t* v) const { return std::to_string(*v); }
    std::string operator()(const float* v) const { return shortest(*v); }
    std::string operator()(const double* v) const { return shortest(*v); }
    std::string operator()(const std::string* v) const { return std::to_string(v->size()) + ":" + *v; }
    std::string operator()(const std::vector<std::string>* v) const {
      std::string s = "[";
      for (const std::string& e : *v) s += std::to_string(e.size()) + ":" + e + ",";
      return s + "]";
    }
    std::string operator()(const std::vector<double>* v) const {
      std::string s = "[";
      for (double e : *v) s += shortest(e) + ",";
      return s + "]";
    }
  } visit;
  return std::visit(visit, f);
}

// The default as the README shows it: default_text, or the default RunConfig's value.
std::string documented_default(const ConfigKey& k) {
  if (*k.default_text) return k.default_text;
  RunConfig defaults;
  const ConfigField f = k.field(defaults);
  if (const auto* s = std::get_if<std::string*>(&f)) {
    std::string quoted = "`\"";
    for (char ch : **s) quoted += ch == '\n' ? std::string("\\n") : std::string(1, ch);
    return quoted + "\"`";
  }
  std::string text = exact(f);
  return text;
}

}  // namespace

bool Bounds::contains(double v) const {
  if (std::isnan(v)) return false;
  if (min_exclusive ? !(v > min) : !(v >= min)) return false;
  if (max_exclusive ? !(v < max) : !(v <= max)) return false;
  return true;
}

std::string Bounds::describe() const {
  std::string s;
  if (min != -kInf) s += (min_exclusive ? "> " : ">= ") + shortest(min);
  if (max != kInf)
    s += (s.empty() ? "" : " and ") + std::string(max_exclusive ? "< " : "<= ") + shortest(max);
  return s;
}

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = make_keys();
  return keys;
}

const ConfigKey* find_config_key(const std::string& key) {
  for (const ConfigKey& k : config_keys())
    if (key == k.key) return &k;
  return nullptr;
}

std::string exact_value(const ConfigKey& key, const RunConfig& config) {
  // field() hands out a mutable pointer; the value is only read.
  return exact(key.field(const_cast<RunConfig&>(config)));
}

std::string display_value(const ConfigKey& key, const RunConfig& config) {
  const ConfigField f = key.field(const_cast<RunConfig&>(config));
  auto quote = [](const std::string& v) {
    std::string q = "\"";
    for (char ch : v)
      q += ch == '\n' ? std::string("\\n") : ch == '"' ? std::string("\\\"") : std::string(1, ch);
    return q + "\"";
  };
  if (const auto* s = std::get_if<std::string*>(&f)) return quote(**s);
  if (const auto* v = std::get_if<std::vector<std::string>*>(&f)) {
    std::string out = "[";
    for (const std::string& e : **v) out += (out.size() > 1 ? ", " : "") + quote(e);
    return out + "]";
  }
  if (const auto* v = std::get_if<std::vector<double>*>(&f)) {
    std::string out = "[";
    for (double e : **v) out += (out.size() > 1 ? ", " : "") + shortest(e);
    return out + "]";
  }
  return exact(f);
}

std::string config_keys_markdown() {
  std::string s = "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const ConfigKey& k : config_keys()) {
    std::string meaning = k.meaning;
    const std::string range = k.bounds.describe();
    if (!range.empty()) meaning += " (" + range + ")";
    s +=
        "| " + std::string(k.key) + " | " + k.type + " | " + documented_default(k) + " | " + meaning + " |\n";
  }
  return s;
}

}  // namespace kervan
