// The `kervan` command: one binary, one subcommand per job.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "core/error.h"
#include "launcher/bench.h"
#include "launcher/config_keys.h"
#include "launcher/coordinator_cmd.h"
#include "launcher/corpus_cmd.h"
#include "launcher/prepare.h"
#include "launcher/run_config.h"
#include "launcher/status_cmd.h"
#include "launcher/tokenizer_cmd.h"
#include "launcher/train.h"
#include "parallel/mpi_runtime.h"

namespace {

// One line on stderr and the exit code of its kind; under mpirun the other ranks may be waiting
// in a collective, so the whole job ends.
int fail(const std::string& message, int exit_code) {
  if (kervan::MpiRuntime::active()) kervan::MpiRuntime::abort_job(message, exit_code);
  std::fprintf(stderr, "kervan: error: %s\n", message.c_str());
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kervan;
  spdlog::set_default_logger(spdlog::stderr_color_mt("kervan"));
  spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");

  CLI::App app{"kervan: pretrain GPT language models"};
  app.require_subcommand(1);

  std::string config_path;
  std::vector<std::string> overrides;
  auto* train = app.add_subcommand("train", "Train a model from a TOML config");
  train->add_option("--config", config_path, "Config file (TOML)")->required();
  train->add_option("--set", overrides, "Override a config key: section.key=value (repeatable)");

  auto* config = app.add_subcommand("config", "What a training config can say");
  config->require_subcommand(1);
  auto* config_keys_cmd =
      config->add_subcommand("keys", "Every config key as a markdown table (configs/README.md)");

  PrepareCommand prepare(app);  // kervan prepare
  CorpusCommand corpus(app);    // kervan corpus verify|cat
  CoordinatorCommand coordinator(app);  // kervan coordinator
  StatusCommand status(app);            // kervan status

  auto* bench = app.add_subcommand("bench", "Benchmarks (print JSON lines)");
  bench->require_subcommand(1);
  int64_t gemm_n = 2048, gemm_threads = 1;
  int gemm_reps = 5;
  auto* gemm = bench->add_subcommand("gemm", "fp32 GEMM throughput of the CPU backend");
  gemm->add_option("--size", gemm_n, "Matrix size n (n x n x n)");
  gemm->add_option("--threads", gemm_threads, "Threads");
  gemm->add_option("--reps", gemm_reps, "Timed repetitions (best is reported)");
  int64_t ar_min = 4096, ar_max = 256 << 20;
  int ar_reps = 5;
  auto* allreduce =
      bench->add_subcommand("allreduce", "All-reduce bus bandwidth vs plain MPI (run under mpirun)");
  allreduce->add_option("--min-bytes", ar_min, "Smallest message");
  allreduce->add_option("--max-bytes", ar_max, "Largest message (sizes grow 4x)");
  allreduce->add_option("--reps", ar_reps, "Timed repetitions per size (median)");
  BenchLoaderOptions bl;
  auto* bloader = bench->add_subcommand("loader", "Training data loader throughput (batches/s)");
  bloader->add_option("--data", bl.paths, "Corpus folders or llm.c .bin files (several: blended)")
      ->required();
  bloader->add_option("--weights", bl.weights, "Blend weights, one per --data");
  bloader->add_option("--batch", bl.batch, "Sequences per batch");
  bloader->add_option("--seq", bl.seq, "Sequence length");
  bloader->add_option("--batches", bl.batches, "Batches to time");
  bloader->add_option("--first-sample", bl.first_sample, "Start at this consumed-samples count");
  BenchCoordinatorOptions bc;
  auto* bcoord = bench->add_subcommand("coordinator", "Coordinator: RPCs/s and latency, streaming MB/s, memory");
  bcoord->add_option("--workers", bc.workers, "Simulated workers (one connection each)");
  bcoord->add_option("--seconds", bc.seconds, "Seconds per load run");
  bcoord->add_option("--corpus-mb", bc.corpus_mb, "Synthetic corpus to stream (MB)");
  bcoord->add_option("--rounds", bc.rounds, "Streaming rounds (gRPC and TCP alternating; medians)");
  bcoord->add_option("--manifest-tokens", bc.manifest_tokens, "Memory: tokens of the synthetic manifest (1e12)");
  bcoord->add_option("--shard-tokens", bc.shard_tokens, "Memory: tokens per shard (1e8)");
  bcoord->add_option("--only", bc.only, "rpc, stream or memory")->check(CLI::IsMember({"rpc", "stream", "memory"}));
  bcoord->add_option("--coordinator", bc.coordinator, "rpc: load this coordinator (HOST:PORT) instead of one in-process");
  BenchTrainOptions bt;
  auto* btrain = bench->add_subcommand("train", "Train on random tokens and report speed");
  auto* preset_opt = btrain->add_option("--preset", bt.preset, "Model preset");
  auto* layers_opt = btrain->add_option("--layers", bt.layers, "Layers")->excludes(preset_opt);
  btrain->add_option("--heads", bt.heads, "Heads")->needs(layers_opt);
  btrain->add_option("--d-model", bt.d_model, "Model width")->needs(layers_opt);
  btrain->add_option("--vocab", bt.vocab, "Vocabulary size")->needs(layers_opt);
  btrain->add_option("--batch", bt.batch, "Sequences per step");
  btrain->add_option("--seq", bt.seq, "Sequence length");
  btrain->add_option("--threads", bt.threads, "Threads");
  btrain->add_option("--tp", bt.tp, "Tensor-parallel size (under mpirun)");
  btrain->add_flag("--zero", bt.zero1, "ZeRO-1: AdamW state sharded over the data-parallel replicas");
  btrain->add_option("--steps", bt.steps, "Timed steps");
  btrain->add_option("--warmup-steps", bt.warmup_steps, "Untimed steps first");
  btrain->add_flag("--profile", bt.profile, "Also report forward / backward / optimizer time");

  TokenizerCommand tokenizer_cmd(app);  // kervan tokenizer encode|decode|bench

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  try {
    if (*train) return run_train(load_run_config(config_path, overrides));
    if (prepare.selected()) {
      std::string command_line = "kervan";
      for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        command_line +=
            a.find_first_of(" \t'\"") == std::string::npos && !a.empty() ? " " + a : " '" + a + "'";
      }
      return prepare.run(command_line);
    }
    if (corpus.selected()) return corpus.run();
    if (*config_keys_cmd) {
      std::fputs(config_keys_markdown().c_str(), stdout);
      return 0;
    }
    if (coordinator.selected()) return coordinator.run();
    if (status.selected()) return status.run();
    if (tokenizer_cmd.selected()) return tokenizer_cmd.run();
    if (*gemm) return run_bench_gemm(gemm_n, gemm_threads, gemm_reps);
    if (*allreduce) return run_bench_allreduce(ar_min, ar_max, ar_reps);
    if (*bloader) return run_bench_loader(bl);
    if (*bcoord) return run_bench_coordinator(bc);
    if (*btrain) {
      if (bt.preset.empty() && (bt.layers <= 0 || bt.heads <= 0 || bt.d_model <= 0 || bt.vocab <= 0))
        throw UserError("bench train: give --preset or all of --layers --heads --d-model --vocab");
      return run_bench_train(bt);
    }
  } catch (const UserError& e) {
    return fail(e.what(), kExitUser);
  } catch (const EnvironmentError& e) {
    return fail(e.what(), kExitEnvironment);
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what(), kExitInternal);
  }
  return 0;
}
