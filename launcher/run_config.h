#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/model/gpt_config.h"
#include "core/optim/lr_schedule.h"

namespace kervan {

// Everything `kervan train` needs, resolved from a TOML file plus --set overrides. Every key, with
// its type, default, range and meaning, is declared once in launcher/config_keys.cpp; the table in
// configs/README.md is made from there.
struct RunConfig {
  std::string file;  // the config file, for messages
  // Where each key's value came from: "file" or "--set"; keys absent here have their default.
  std::map<std::string, std::string> origin;
  std::string arch = "gpt";  // model.arch: the family, "gpt" | "bert" | "t5" | "rnn" | "lstm" | "gru"
  std::string preset;
  // The shape keys every family shares (n_layer, n_head, d_model, vocab_size, max_seq_len; T5 has
  // no position table); launcher/model_setup.h turns them into the family's config.
  GPTConfig model;
  std::string t5_ffn = "relu";  // model.t5_ffn: "relu" (T5 v1.0) | "gated-gelu" (v1.1)
  // The recurrent families' keys (core/model/recurrent.h).
  struct Recurrent {
    bool tied = true;          // model.tied
    bool residual = false;     // model.residual
    bool carry_state = false;  // model.carry_state
  } recurrent;

  struct Data {
    // kervan corpus folders (their train split) or llm.c .bin files; several are blended
    std::vector<std::string> paths;
    std::vector<double> weights;  // one per path; empty: proportional to each source's tokens
    // How to encode the sample prompt and show samples: "gpt2", a tokenizer folder, "bytes" or
    // "none" (ids); empty: the corpus's own tokenizer ("none" for llm.c files).
    std::string tokenizer;
    // Read the corpora from a coordinator (HOST:PORT) instead of disk; data.path then names
    // served corpora (empty: every one it serves).
    std::string coordinator;
    std::string coordinator_job = "default";
    double coordinator_timeout_s = 60;  // retry an unreachable coordinator this long
    std::string cache_dir;              // empty: ${XDG_CACHE_HOME:-~/.cache}/kervan/tokens
    double cache_gb = 10;               // bound of this process's token cache
    int64_t read_ahead = 8;             // batches fetched ahead of training
    int64_t whole_word_masking = 0;     // BERT: 1 masks whole words
  } data;

  struct Train {
    int64_t steps = 0;
    int64_t micro_batch = 0;  // sequences per process per micro-step
    int64_t seq_len = 0;
    int64_t grad_accum = 1;  // micro-steps per optimizer step
    int64_t seed = 1337;
    float lr = 6e-4f;
    float min_lr = 0.0f;
    int64_t warmup_steps = 0;
    std::string schedule = "cosine";
    int64_t decay_steps = 0;  // wsd
    float weight_decay = 0.1f;
    float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
    float grad_clip = 1.0f;      // 0: off
    int64_t threads = 0;         // 0: all cores
    std::string device = "cpu";  // "cpu" or "cuda" (core/backends)
    std::string precision = "fp32";  // of matrix products: "fp32", or "bf16" (CUDA only)
    bool deterministic = false;      // Backend::set_deterministic (docs/gpu.md)
    int64_t eval_every = 0;      // validation loss every N steps and at the end (0: off)
    int64_t eval_batches = 8;    // global batches of the validation split per evaluation
    int64_t max_bad_steps = 5;   // consecutive non-finite steps (each skipped) that stop the run
  } train;

  struct Parallel {
    int64_t tp = 1;                       // tensor-parallel size (DP = world / tp)
    float bucket_mb = 25.0f;              // data-parallel all-reduce bucket size
    float collective_timeout_s = 600.0f;  // a collective slower than this ends the job
    int64_t zero = 0;                     // 1: ZeRO-1, optimizer state sharded over DP
    std::string coordinator;              // "embedded": rank 0 serves data.path to every rank
  } parallel;

  struct Log {
    std::string metrics_file;
    int64_t every = 1;  // console line every N steps
  } log;

  struct Checkpoint {
    std::string dir;    // empty: no checkpoints
    int64_t every = 0;  // 0: only after the last step
    int64_t keep_last = 3;
    int64_t keep_every = 0;  // 0: none kept forever
    bool async = true;
    std::string resume = "auto";  // "auto", "none" or a path
    bool strict = false;
    std::string init_from;            // weights to start from when not resuming
    std::string on_failure = "stop";  // "stop" or "continue"
  } checkpoint;

  struct Sample {
    int64_t tokens = 0;  // generate this many tokens after training (0: none)
    std::string prompt = "\n";
    float temperature = 1.0f;
    int64_t top_k = 0;
    float top_p = 1.0f;
    int64_t every = 0;  // also sample during training every N steps (0: never)
  } sample;

  // `kervan finetune` (launcher/finetune.h): a task on JSON-lines examples.
  struct Finetune {
    std::string task;                 // "classify" | "text2text"
    std::string train, val;           // JSON-lines files
    std::vector<std::string> labels;  // classify: the label set (empty: the training file's)
    std::string init_from;            // a checkpoint whose model weights start the run
    int64_t max_target_len = 32;      // text2text: target tokens
    int64_t show = 3;                 // text2text: generated validation outputs shown
  } finetune;

  LrSchedule schedule() const;
  // Every resolved field as text: ranks compare its hash to catch mismatched configs.
  std::string canonical() const;
};

// Reads `path`, applies overrides of the form "section.key=value" (the value parsed as TOML, or
// taken as a string when it is not valid TOML), and validates. Every mistake is a UserError that
// names the file (or the --set) and the key: unknown keys, wrong types, impossible model shapes.
// The command a config is for: `kervan train` reads [data] and refuses [finetune] keys;
// `kervan finetune` needs finetune.task and finetune.train and refuses data.path.
enum class Command { Train, Finetune };
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides,
                          Command command = Command::Train);

// The checks of the model's shape against the sequence length that every command building a model
// applies (train, finetune, bench train): the family's shortest sequence, model.validate(),
// train.seq_len <= model.max_seq_len. A UserError "WHERE: LABEL ...", where(key) placing the key
// (a config line, a command) and label(key) naming it (the key, or a command's flag).
using KeyText = std::function<std::string(const std::string& key)>;
void check_model_shape(const RunConfig& c, const KeyText& where, const KeyText& label);
// What data.tokenizer may name: "" (the corpus's), none, bytes, gpt2, or a folder holding
// encoder.json and vocab.bpe; anything else is a UserError "WHERE: data.tokenizer ...".
void check_tokenizer_name(const std::string& tokenizer, const std::string& where);

}  // namespace kervan
