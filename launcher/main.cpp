// The `kervan` command: one binary, one subcommand per job.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "core/error.h"
#include "launcher/bench_cmd.h"
#include "launcher/ckpt_cmd.h"
#include "launcher/cli_checks.h"
#include "launcher/config_keys.h"
#include "launcher/coordinator_cmd.h"
#include "launcher/corpus_cmd.h"
#include "launcher/dry_run.h"
#include "launcher/finetune.h"
#include "launcher/plot_cmd.h"
#include "launcher/prepare.h"
#include "launcher/run_config.h"
#include "launcher/sample_cmd.h"
#include "launcher/status_cmd.h"
#include "launcher/study_cmd.h"
#include "launcher/tokenizer_cmd.h"
#include "launcher/train.h"
#include "launcher/version.h"
#include "parallel/mpi_runtime.h"

namespace {

// One line on stderr and the exit code of its kind; under mpirun the other ranks may be waiting
// in a collective, so the whole job ends.
int fail(const std::string& message, int exit_code) {
  if (kervan::MpiRuntime::active()) kervan::MpiRuntime::abort_job(message, exit_code);
  std::fprintf(stderr, "kervan: error: %s\n", message.c_str());
  return exit_code;
}

// "kervan frobnicate": CLI11 would say "A subcommand is required"; name the word instead.
std::string unknown_command(const CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return "";
  std::string known;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name() == argv[1]) return "";
    known += (known.empty() ? "" : ", ") + sub->get_name();
  }
  return std::string("unknown command '") + argv[1] + "' (kervan commands: " + known + "; kervan --help)";
}

// A command that printed its result to stdout has not succeeded until the bytes are out: a full
// disk or a closed pipe shows only when the buffer is flushed. Returns the command's exit code, or
// 4 naming stdout when the output was lost.
int finish_output(int exit_code) {
  std::cout.flush();
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
    const int err = errno;
    return fail(
        std::string("write on standard output: ") + std::strerror(err) + " (the output is incomplete)",
        kervan::kExitEnvironment);
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kervan;
  spdlog::set_default_logger(spdlog::stderr_color_mt("kervan"));
  spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");

  CLI::App app{"kervan: pretrain GPT, BERT and T5 language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       std::string("kervan ") + kervan_version() + " (commit " + kervan_git_commit() + ")");

  std::string config_path;
  std::vector<std::string> overrides;
  auto* train = app.add_subcommand("train", "Train a model from a TOML config");
  train->add_option("--config", config_path, "Config file (TOML)")->required();
  train->add_option("--set", overrides, "Override a config key: section.key=value (repeatable)");
  bool dry_run = false;
  int plan_world = 0, plan_ranks_per_node = 0;
  double plan_gpu_memory_gb = 0;
  train->add_flag(
      "--dry-run", dry_run,
      "Print the resolved config (with where each value came from) and the plan (parameters, layout, "
      "tokens per step, steps per epoch, memory per rank vs the node), then exit without training");
  train
      ->add_option("--world", plan_world,
                   "--dry-run: the number of processes to plan for (default: mpirun's or "
                   "srun's, else 1)")
      ->check(CLI::Range(1, 1 << 20));
  train
      ->add_option("--ranks-per-node", plan_ranks_per_node,
                   "--dry-run: processes on each node (default: the launcher's, else --world)")
      ->check(CLI::Range(1, 1 << 20));
  train
      ->add_option("--gpu-memory", plan_gpu_memory_gb,
                   "--dry-run with train.device = \"cuda\": plan for GPUs of this many GB (e.g. 80), "
                   "not this machine's")
      ->check(CLI::Range(0.001, 1e6));

  std::string finetune_config;
  std::vector<std::string> finetune_overrides;
  bool skip_bad_lines = false;
  auto* finetune =
      app.add_subcommand("finetune", "Fine-tune a model on a classify or text2text task (JSON lines)");
  finetune->add_option("--config", finetune_config, "Config file (TOML)")->required();
  finetune->add_option("--set", finetune_overrides, "Override a config key: section.key=value (repeatable)");
  finetune->add_flag("--skip-bad-lines", skip_bad_lines,
                     "Skip (and count) fine-tuning lines that are not valid examples");

  auto* config = app.add_subcommand("config", "What a training config can say");
  config->require_subcommand(1);
  auto* config_keys_cmd =
      config->add_subcommand("keys", "Every config key as a markdown table (configs/README.md)");

  PrepareCommand prepare(app);          // kervan prepare
  CorpusCommand corpus(app);            // kervan corpus verify|cat
  CoordinatorCommand coordinator(app);  // kervan coordinator
  StatusCommand status(app);            // kervan status
  CkptCommand ckpt(app);                // kervan ckpt inspect|verify|export|import
  PlotCommand plot(app);                // kervan plot
  SampleCommand sample(app);            // kervan sample
  StudyCommand study(app);              // kervan study recurrent|grad-norms|recall

  BenchCommand bench(app);  // kervan bench gemm|allreduce|loader|train|checkpoint|coordinator|generate
  TokenizerCommand tokenizer_cmd(app);  // kervan tokenizer encode|decode|bench

  check_integers_everywhere(app);  // "--seed 99999999999999999999" is refused, not taken as 2^63 - 1
  check_texts_everywhere(app);     // "--out ''" is refused, not handed to the file system
  if (const std::string unknown = unknown_command(app, argc, argv); !unknown.empty())
    return fail(unknown, kExitUser);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return finish_output(app.exit(e));
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUser;
  }

  try {
    int rc = kExitOk;
    if (*train) {
      if (dry_run) {
        PlannedLayout layout = planned_layout(plan_world, plan_ranks_per_node);
        layout.gpu_memory_gb = plan_gpu_memory_gb;
        rc = run_dry_run(load_run_config(config_path, overrides), layout);
      } else if (plan_world || plan_ranks_per_node || plan_gpu_memory_gb > 0) {
        return fail(
            "--world, --ranks-per-node and --gpu-memory go with --dry-run (a real run takes its size from "
            "mpirun or srun, and its GPU's memory from the GPU)",
            kExitUser);
      } else {
        rc = run_train(load_run_config(config_path, overrides));
      }
    } else if (*finetune) {
      rc = run_finetune(load_run_config(finetune_config, finetune_overrides, Command::Finetune),
                        skip_bad_lines);
    } else if (prepare.selected()) {
      std::string command_line = "kervan";
      for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        command_line +=
            a.find_first_of(" \t'\"") == std::string::npos && !a.empty() ? " " + a : " '" + a + "'";
      }
      rc = prepare.run(command_line);
    } else if (corpus.selected()) {
      rc = corpus.run();
    } else if (*config_keys_cmd) {
      std::fputs(config_keys_markdown().c_str(), stdout);
    } else if (plot.selected()) {
      rc = plot.run();
    } else if (sample.selected()) {
      rc = sample.run();
    } else if (study.selected()) {
      rc = study.run();
    } else if (coordinator.selected()) {
      rc = coordinator.run();
    } else if (status.selected()) {
      rc = status.run();
    } else if (ckpt.selected()) {
      rc = ckpt.run();
    } else if (tokenizer_cmd.selected()) {
      rc = tokenizer_cmd.run();
    } else if (bench.selected()) {
      rc = bench.run();
    }
    return finish_output(rc);
  } catch (const UserError& e) {
    return fail(e.what(), kExitUser);
  } catch (const EnvironmentError& e) {
    return fail(e.what(), kExitEnvironment);
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the operating system refuses (a name too long, a loop, no permission) is the user's;
    // a full disk or an I/O error the environment's.
    return fail(e.path1().string() + ": " + e.code().message(),
                is_environment_errno(e.code().value()) ? kExitEnvironment : kExitUser);
  } catch (const std::system_error& e) {
    // A system call that failed outside kervan's own checks (a thread the system cannot create):
    // the environment's when its cause is (no resources), else a bug.
    if (is_environment_errno(e.code().value()))
      return fail(std::string("the system refused: ") + e.what() + " (a smaller --threads or train.threads needs less)",
                  kExitEnvironment);
    return fail(std::string("internal error: ") + e.what(), kExitInternal);
  } catch (const std::bad_alloc&) {
    return fail(
        "out of memory (a smaller train.micro_batch or train.seq_len, parallel.tp or parallel.zero = 1 "
        "would need less)",
        kExitEnvironment);
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what(), kExitInternal);
  }
  return 0;
}
