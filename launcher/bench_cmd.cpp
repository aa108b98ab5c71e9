#include "launcher/bench_cmd.h"

#include "core/error.h"
#include "core/model/gpt_config.h"
#include "launcher/cli_checks.h"

namespace kervan {

namespace {
constexpr int64_t kMaxDim = 1 << 20;  // any size a benchmark may take: far above useful, far below overflow
}

BenchCommand::BenchCommand(CLI::App& app) {
  cmd_ = app.add_subcommand("bench", "Benchmarks (print JSON lines)");
  cmd_->require_subcommand(1);

  gemm_ = cmd_->add_subcommand("gemm", "fp32 GEMM throughput of the CPU backend");
  gemm_->add_option("--size", gemm_n_, "Matrix size n (n x n x n)")
      ->check(CLI::Range(int64_t{1}, int64_t{16384}));
  gemm_->add_option("--shape", gemm_shape_, "M,N,K: C[M,N] = A[M,K] B[K,N] instead of --size cubed")
      ->expected(3)
      ->delimiter(',')
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 17))
      ->excludes("--size");
  gemm_->add_flag("--trans-a", gemm_trans_a_, "Multiply by A^T (A stored K x M)");
  gemm_->add_flag("--trans-b", gemm_trans_b_, "Multiply by B^T (B stored N x K), as a linear layer's x W^T");
  gemm_->add_option("--threads", gemm_threads_, "Threads")->check(CLI::Range(int64_t{1}, int64_t{1024}));
  gemm_->add_option("--reps", gemm_reps_, "Timed repetitions (best is reported)")->check(CLI::Range(1, 1000));

  allreduce_ = cmd_->add_subcommand("allreduce", "All-reduce bus bandwidth vs plain MPI (run under mpirun)");
  allreduce_->add_option("--min-bytes", ar_min_, "Smallest message")
      ->check(CLI::Range(int64_t{4}, int64_t{1} << 31));
  allreduce_->add_option("--max-bytes", ar_max_, "Largest message (sizes grow 4x)")
      ->check(CLI::Range(int64_t{4}, int64_t{1} << 31));
  allreduce_->add_option("--reps", ar_reps_, "Timed repetitions per size (median)")
      ->check(CLI::Range(1, 1000));

  loader_ = cmd_->add_subcommand("loader", "Training data loader throughput (batches/s)");
  auto& bl = loader_opt_;
  loader_->add_option("--data", bl.paths, "Corpus folders or llm.c .bin files (several: blended)")
      ->required();
  loader_->add_option("--weights", bl.weights, "Blend weights, one per --data")
      ->check(FiniteRange(1e-300, 1e300));
  loader_->add_option("--batch", bl.batch, "Sequences per batch")->check(CLI::Range(int64_t{1}, kMaxDim));
  loader_->add_option("--seq", bl.seq, "Sequence length")->check(CLI::Range(int64_t{1}, kMaxDim));
  loader_->add_option("--batches", bl.batches, "Batches to time")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  loader_->add_option("--first-sample", bl.first_sample, "Start at this consumed-samples count")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));

  train_ = cmd_->add_subcommand("train", "Train on random tokens and report speed");
  auto& bt = train_opt_;
  train_->add_option("--arch", bt.arch, "Model family: gpt, bert, t5, rnn, lstm or gru")
      ->check(CLI::IsMember({"gpt", "bert", "t5", "rnn", "lstm", "gru"}));
  train_->add_option("--t5-ffn", bt.t5_ffn, "T5 feed-forward: relu or gated-gelu")
      ->check(CLI::IsMember({"relu", "gated-gelu"}));
  auto* preset = train_->add_option("--preset", bt.preset, "Model preset (of --arch's family)");
  auto* layers =
      train_->add_option("--layers", bt.layers, "Layers")->excludes(preset)->check(CLI::Range(1, 4096));
  train_->add_option("--heads", bt.heads, "Heads")->needs(layers)->check(CLI::Range(1, 4096));
  train_->add_option("--d-model", bt.d_model, "Model width")
      ->needs(layers)
      ->check(CLI::Range(int64_t{1}, kMaxDim));
  train_->add_option("--vocab", bt.vocab, "Vocabulary size")
      ->needs(layers)
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  train_->add_option("--batch", bt.batch, "Sequences per step")->check(CLI::Range(int64_t{1}, kMaxDim));
  train_->add_option("--seq", bt.seq, "Sequence length")->check(CLI::Range(int64_t{1}, kMaxDim));
  train_->add_option("--threads", bt.threads, "Threads")->check(CLI::Range(int64_t{1}, int64_t{1024}));
  train_->add_option("--tp", bt.tp, "Tensor-parallel size (under mpirun)")
      ->check(CLI::Range(int64_t{1}, int64_t{65536}));
  train_->add_flag("--zero", bt.zero1, "ZeRO-1: AdamW state sharded over the data-parallel replicas");
  train_->add_option("--steps", bt.steps, "Timed steps")->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  train_->add_option("--warmup-steps", bt.warmup_steps, "Untimed steps first")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  train_->add_flag("--profile", bt.profile, "Also report forward / backward / optimizer time");
  train_->add_option("--device", bt.device, "Device: cpu, or cuda (one process, docs/gpu.md)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  train_
      ->add_option("--precision", bt.precision,
                   "Matrix products: fp32, or bf16 (tensor cores; --device cuda)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  train_->add_flag("--deterministic", bt.deterministic,
                   "Deterministic mode (train.deterministic): no split-K matrix products on cuda");

  checkpoint_ =
      cmd_->add_subcommand("checkpoint", "Checkpoint save/load speed vs plain I/O; async save stall vs sync");
  auto& bc = checkpoint_opt_;
  checkpoint_->add_option("--preset", bc.preset, "Model preset (its parameters and AdamW moments are saved)");
  checkpoint_
      ->add_option("--dir", bc.dir, "Scratch folder on the disk to measure (must be empty; removed after)")
      ->required();
  checkpoint_->add_option("--threads", bc.threads, "Threads")->check(CLI::Range(int64_t{1}, int64_t{1024}));
  checkpoint_->add_option("--batch", bc.batch, "Sequences per training step (the async stall measurement)")
      ->check(CLI::Range(int64_t{1}, kMaxDim));
  checkpoint_->add_option("--seq", bc.seq, "Sequence length")->check(CLI::Range(int64_t{1}, kMaxDim));
  checkpoint_->add_option("--steps", bc.steps, "Steps timed without a save, for the baseline step time")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  checkpoint_->add_flag("--collective", bc.collective,
                        "Under mpirun: one file per rank vs one collective parallel-HDF5 file");

  coordinator_ =
      cmd_->add_subcommand("coordinator", "Coordinator: RPCs/s and latency, streaming MB/s, memory");
  auto& bco = coordinator_opt_;
  coordinator_->add_option("--workers", bco.workers, "Simulated workers (one connection each)")
      ->check(CLI::Range(1, 100000));
  coordinator_->add_option("--seconds", bco.seconds, "Seconds per load run")->check(FiniteRange(0.1, 3600.0));
  coordinator_
      ->add_option("--warmup-s", bco.warmup_s,
                   "rpc: seconds of load before each run's timed window, left out of its figures (1)")
      ->check(FiniteRange(0.0, 3600.0));
  coordinator_->add_option("--corpus-mb", bco.corpus_mb, "Synthetic corpus to stream (MB)")
      ->check(FiniteRange(1.0, 1e6));
  coordinator_->add_option("--rounds", bco.rounds, "Streaming rounds (gRPC and TCP alternating; medians)")
      ->check(CLI::Range(1, 1000));
  coordinator_
      ->add_option("--manifest-tokens", bco.manifest_tokens,
                   "Memory: tokens of the synthetic manifest (1e12)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 60));
  coordinator_->add_option("--shard-tokens", bco.shard_tokens, "Memory: tokens per shard (1e8)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 60));
  coordinator_
      ->add_option("--paces", bco.paces_ms,
                   "rpc: ms between a worker's fetches, one run each (0: closed loop)")
      ->delimiter(',')
      ->check(FiniteRange(0.0, 1e6));
  coordinator_
      ->add_option("--client-processes", bco.client_processes,
                   "rpc: child processes running the simulated workers (each its own gRPC client)")
      ->check(CLI::Range(1, 256));
  coordinator_
      ->add_option("--client-threads", bco.client_threads,
                   "rpc: threads driving each process's simulated workers")
      ->check(CLI::Range(1, 256));
  coordinator_
      ->add_option("--client", bco.client,
                   "rpc: the simulated workers' client: h2 (the same HTTP/2 requests as gRPC's, from a "
                   "lean client, so the cores go to the coordinator) or grpc (gRPC's C++ client, as "
                   "kervan's workers)")
      ->check(CLI::IsMember({"h2", "grpc"}));
  // What a parent passes its child processes (launcher/coordinator_load_children.h); not for users.
  coordinator_->add_option("--load-child", bco.load_child)->check(CLI::Range(0, 100000))->group("");
  coordinator_->add_option("--load-world", bco.load_world)->check(CLI::Range(1, 100000))->group("");
  coordinator_->add_option("--heartbeat-ms", bco.heartbeat_ms, "rpc: ms between a worker's heartbeats")
      ->check(FiniteRange(1.0, 1e6));
  coordinator_->add_flag("--no-fetch", bco.no_fetch,
                         "rpc: heartbeats only, the smallest RPC (gRPC's own cost per call): every "
                         "--heartbeat-ms, or closed loop for a pace of 0");
  coordinator_->add_option("--only", bco.only, "rpc, stream or memory")
      ->check(CLI::IsMember({"rpc", "stream", "memory"}));
  coordinator_->add_option("--coordinator", bco.coordinator,
                           "rpc: load this coordinator (HOST:PORT) instead of one in-process");

  generate_ =
      cmd_->add_subcommand("generate", "GPT generation: KV cache vs recomputing the context per token");
  auto& bg = generate_opt_;
  generate_->add_option("--preset", bg.preset, "GPT preset (random weights)")
      ->check(CLI::IsMember(gpt_preset_names()));
  generate_->add_option("--tokens", bg.tokens, "Tokens to generate")->check(CLI::Range(int64_t{1}, kMaxDim));
  generate_->add_option("--prompt-tokens", bg.prompt_tokens, "Random prompt tokens")
      ->check(CLI::Range(int64_t{1}, kMaxDim));
  generate_->add_option("--threads", bg.threads, "Threads")->check(CLI::Range(int64_t{1}, int64_t{1024}));

  attention_ = cmd_->add_subcommand("attention", "Attention core forward and backward time at one shape");
  auto& ba = attention_opt_;
  attention_->add_option("--device", ba.device, "Device: cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  attention_->add_option("--precision", ba.precision, "fp32, or bf16 (the tensor-core kernel; --device cuda)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  attention_->add_option("--batch", ba.batch, "Sequences")->check(CLI::Range(int64_t{1}, kMaxDim));
  attention_->add_option("--heads", ba.heads, "Heads")->check(CLI::Range(int64_t{1}, int64_t{4096}));
  attention_->add_option("--seq", ba.seq, "Sequence length")->check(CLI::Range(int64_t{1}, kMaxDim));
  attention_->add_option("--head-size", ba.head_size, "Head size")
      ->check(CLI::Range(int64_t{1}, int64_t{256}));
  attention_->add_option("--causal", ba.causal, "Causal mask (true) or none (false)");
  attention_->add_option("--threads", ba.threads, "Threads")->check(CLI::Range(int64_t{1}, int64_t{1024}));
  attention_->add_option("--reps", ba.reps, "Calls per timed batch (median of 5 batches)")
      ->check(CLI::Range(1, 10000));
}

int BenchCommand::run() const {
  if (gemm_->parsed())
    return run_bench_gemm(gemm_shape_.empty() ? std::vector<int64_t>{gemm_n_, gemm_n_, gemm_n_} : gemm_shape_,
                          gemm_trans_a_, gemm_trans_b_, gemm_threads_, gemm_reps_);
  if (allreduce_->parsed()) {
    if (ar_min_ > ar_max_)
      throw UserError("bench allreduce: --min-bytes (" + std::to_string(ar_min_) + ") exceeds --max-bytes (" +
                      std::to_string(ar_max_) + ")");
    return run_bench_allreduce(ar_min_, ar_max_, ar_reps_);
  }
  if (loader_->parsed()) {
    if (!loader_opt_.weights.empty() && loader_opt_.weights.size() != loader_opt_.paths.size())
      throw UserError("bench loader: --weights needs one weight per --data (" +
                      std::to_string(loader_opt_.paths.size()) + "), got " +
                      std::to_string(loader_opt_.weights.size()));
    return run_bench_loader(loader_opt_);
  }
  if (checkpoint_->parsed()) return run_bench_checkpoint(checkpoint_opt_);
  if (coordinator_->parsed()) return run_bench_coordinator(coordinator_opt_);
  if (generate_->parsed()) return run_bench_generate(generate_opt_);
  if (attention_->parsed()) return run_bench_attention(attention_opt_);
  const BenchTrainOptions& bt = train_opt_;
  if (bt.preset.empty() && (bt.layers <= 0 || bt.heads <= 0 || bt.d_model <= 0 || bt.vocab <= 0))
    throw UserError("bench train: give --preset or all of --layers --heads --d-model --vocab");
  return run_bench_train(bt);
}

}  // namespace kervan
