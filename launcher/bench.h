#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kervan {

struct BenchTrainOptions {
  std::string arch = "gpt";     // the family: gpt, bert, t5, rnn, lstm, gru
  std::string t5_ffn = "relu";  // T5: relu or gated-gelu
  std::string preset;
  int64_t layers = 0, heads = 0, d_model = 0, vocab = 0;
  int64_t batch = 4, seq = 64, threads = 1, steps = 10, warmup_steps = 2;
  int64_t tp = 1;                  // tensor-parallel size (ranks / tp data-parallel replicas)
  bool zero1 = false;              // shard AdamW state over the data-parallel replicas (ZeRO-1)
  bool profile = false;            // also print per-phase timings
  std::string device = "cpu";      // cpu or cuda (one process)
  std::string precision = "fp32";  // of matrix products: fp32, or bf16 (cuda)
  bool deterministic = false;      // Backend::set_deterministic (no split-K products on cuda)
};

struct BenchLoaderOptions {
  std::vector<std::string> paths;  // corpus folders or llm.c files
  std::vector<double> weights;     // blend weights (empty: by tokens)
  int64_t batch = 8, seq = 1024, batches = 2000, first_sample = 0;
};

struct BenchCoordinatorOptions {
  int workers = 1000;                            // simulated workers, one connection each
  double seconds = 5;                            // per load run
  double warmup_s = 1;                           // rpc: before each load run's timed window
  double corpus_mb = 256;                        // synthetic corpus streamed in (b)
  int rounds = 3;                                // of (b), alternating gRPC and TCP; medians
  uint64_t manifest_tokens = 1'000'000'000'000;  // (c): a 1 TB-token corpus
  uint64_t shard_tokens = 100'000'000;           // (c): kervan prepare's default shard size
  std::string only;                              // "rpc", "stream" or "memory"; empty: all three
  // rpc: the fetch paces to load with, each a run of its own (ms per fetch; 0: closed loop).
  std::vector<double> paces_ms = {1000, 100, 52.5, 50, 0};  // 52.5 ms: 20,048 RPC/s with 1,000 workers
  // rpc: the simulated workers run in this many child processes (real workers are processes of
  // their own), each driving its share from client_threads threads (launcher/coordinator_load_children.h).
  int client_processes = 2;
  int client_threads = 1;
  // rpc: how the simulated workers' calls travel (launcher/coordinator_load.h): "h2", plain HTTP/2
  // requests from a lean client, or "grpc", gRPC's C++ client as kervan's workers use it.
  std::string client = "h2";
  double heartbeat_ms = 1000;  // rpc: a worker's heartbeat period
  bool no_fetch = false;       // rpc: heartbeats only (gRPC's own cost per call, for comparison)
  // rpc only: load a coordinator running elsewhere (serving a corpus; token from $KERVAN_TOKEN)
  // instead of one in this process, so that its CPU time can be told from the clients'.
  std::string coordinator;
  // Internal: run as one of those child processes, with these ranks of a world of load_world.
  int load_child = -1, load_world = 0;
};

struct BenchCheckpointOptions {
  std::string preset = "gpt2-small";
  std::string dir;  // a scratch folder on the disk to measure; removed afterwards
  int64_t threads = 2, batch = 1, seq = 64, steps = 3;
  bool collective = false;  // under mpirun: file per rank against one collective parallel-HDF5 file
};

struct BenchAttentionOptions {
  std::string device = "cpu";
  std::string precision = "fp32";
  int64_t batch = 16, heads = 12, seq = 1024, head_size = 64, threads = 2;
  bool causal = true;
  int reps = 10;  // calls per timed batch
};

struct BenchGenerateOptions {
  std::string preset = "gpt2-tiny";
  int64_t tokens = 200, prompt_tokens = 8, threads = 2;
};

// `kervan bench gemm`: prints one JSON line with the fp32 GEMM throughput.
// `shape` is m, n, k (C[m, n] = op(A)[m, k] op(B)[k, n]); trans_a / trans_b transpose A / B.
int run_bench_gemm(const std::vector<int64_t>& shape, bool trans_a, bool trans_b, int64_t threads, int reps);
// `kervan bench train`: trains on random tokens (BERT: 15% of positions predicted; T5: decoder
// sequences of the span-corruption target length); prints one JSON line last. Under mpirun every
// rank is a data-parallel replica with its own batch (the global batch is ranks x --batch), or
// with --tp N, every N consecutive ranks split one replica (tensor parallelism; global batch
// ranks / N x --batch).
int run_bench_train(const BenchTrainOptions& opt);
// `mpirun -np N kervan bench allreduce`: our all-reduce against plain MPI_Allreduce on the same
// buffers, sizes min_bytes, 4 x min_bytes, ... max_bytes; one JSON line per size.
int run_bench_allreduce(int64_t min_bytes, int64_t max_bytes, int reps);
// `kervan bench attention`: the attention core's forward and backward time at one shape, with the
// FLOPs and bytes to measure it against; one JSON line (launcher/bench_attention.cpp).
int run_bench_attention(const BenchAttentionOptions& opt);
// `kervan bench loader`: batches/s of the training data loader; one JSON line.
int run_bench_loader(const BenchLoaderOptions& opt);
// `kervan bench coordinator`: simulated workers against an in-process coordinator, token-data
// streaming against a plain TCP copy, and the memory of a huge manifest; JSON lines
// (launcher/bench_coordinator.cpp).
int run_bench_coordinator(const BenchCoordinatorOptions& opt);
// `kervan bench checkpoint`: one JSON line. In one process: a synchronous save (with optimizer
// state) and a load (with and without verification) of --preset, each next to a plain sequential
// write or read of the same bytes in the same run (reads from the disk: the files' pages are
// dropped from the cache first), and the training stall of an asynchronous save (the copy it
// blocks for plus its writer thread's CPU time; also the steps' measured slowdown while it writes)
// against a synchronous one. With
// --collective under mpirun (the model split over the ranks): the time to write every rank's
// share as one file per rank (kervan's format) and as one file written collectively by parallel
// HDF5.
int run_bench_checkpoint(const BenchCheckpointOptions& opt);
// `kervan bench generate`: greedy generation of --tokens after a random prompt with a randomly
// initialised GPT preset, with the KV cache and then recomputing the whole context per token, in
// one run; one JSON line with the prefill and decode speeds of both and the speedup (exit 1 if the
// two paths gave different tokens).
int run_bench_generate(const BenchGenerateOptions& opt);

}  // namespace kervan
