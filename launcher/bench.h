#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kervan {

struct BenchTrainOptions {
  std::string preset;
  int64_t layers = 0, heads = 0, d_model = 0, vocab = 0;
  int64_t batch = 4, seq = 64, threads = 1, steps = 10, warmup_steps = 2;
  int64_t tp = 1;        // tensor-parallel size (ranks / tp data-parallel replicas)
  bool zero1 = false;    // shard AdamW state over the data-parallel replicas (ZeRO-1)
  bool profile = false;  // also print per-phase timings
};

struct BenchLoaderOptions {
  std::vector<std::string> paths;  // corpus folders or llm.c files
  std::vector<double> weights;     // blend weights (empty: by tokens)
  int64_t batch = 8, seq = 1024, batches = 2000, first_sample = 0;
};

struct BenchCoordinatorOptions {
  int workers = 1000;                       // simulated workers, one connection each
  double seconds = 5;                       // per load run
  double corpus_mb = 256;                   // synthetic corpus streamed in (b)
  int rounds = 3;                           // of (b), alternating gRPC and TCP; medians
  uint64_t manifest_tokens = 1'000'000'000'000;  // (c): a 1 TB-token corpus
  uint64_t shard_tokens = 100'000'000;      // (c): kervan prepare's default shard size
  std::string only;                         // "rpc", "stream" or "memory"; empty: all three
  // rpc only: load a coordinator running elsewhere (serving a corpus; token from $KERVAN_TOKEN)
  // instead of one in this process, so that its CPU time can be told from the clients'.
  std::string coordinator;
};

// `kervan bench gemm`: prints one JSON line with the fp32 GEMM throughput.
int run_bench_gemm(int64_t n, int64_t threads, int reps);
// `kervan bench train`: trains on random tokens; prints one JSON line last. Under mpirun every
// rank is a data-parallel replica with its own batch (the global batch is ranks x --batch), or
// with --tp N, every N consecutive ranks split one replica (tensor parallelism; global batch
// ranks / N x --batch).
int run_bench_train(const BenchTrainOptions& opt);
// `mpirun -np N kervan bench allreduce`: our all-reduce against plain MPI_Allreduce on the same
// buffers, sizes min_bytes, 4 x min_bytes, ... max_bytes; one JSON line per size.
int run_bench_allreduce(int64_t min_bytes, int64_t max_bytes, int reps);
// `kervan bench loader`: batches/s of the training data loader; one JSON line.
int run_bench_loader(const BenchLoaderOptions& opt);
// `kervan bench coordinator`: simulated workers against an in-process coordinator, token-data
// streaming against a plain TCP copy, and the memory of a huge manifest; JSON lines
// (launcher/bench_coordinator.cpp).
int run_bench_coordinator(const BenchCoordinatorOptions& opt);

}  // namespace kervan
