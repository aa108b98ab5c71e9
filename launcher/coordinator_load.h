#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "coordinator/shared_secret.h"
#include "proto/coordinator.pb.h"

namespace kervan {

// How the simulated workers' calls travel: through gRPC's asynchronous C++ client, as kervan's
// workers call (each call costs the client about as much CPU as the coordinator), or as the same
// HTTP/2 requests from a lean nghttp2 client, so that on a shared machine the cores go to the
// coordinator being measured rather than to the clients.
enum class LoadClient { kGrpc, kH2 };

// Simulated workers for `kervan bench coordinator`: each registers, has its own connection, then
// heartbeats and fetches its batches' token windows the way a training worker does, for a while.
// A few threads of a process drive its share of them (launcher/coordinator_load_lane.h);
// launcher/coordinator_load_children.h splits them over processes.
struct LoadOptions {
  std::string address;
  int workers = 1000;
  double seconds = 5;
  // The calls due in the first warmup_s seconds go out as the rest do but are left out of the
  // figures (their count and p99 are reported apart): the first call on each of a thousand new
  // connections, and the first touch of the corpus pages each fetch maps, make a start-up
  // transient (p99 ~100 ms in its first 150 ms on the bench machine) that no later second has.
  double warmup_s = 1;
  // Per worker: a heartbeat every heartbeat_ms, and a fetch of `windows` windows of
  // window_bytes (random places in the train split, rounded out to the token cache's blocks)
  // every step_ms. Closed loop instead: each
  // worker sends its next request as soon as the last one is answered, one heartbeat per ten
  // fetches (the coordinator's capacity).
  double heartbeat_ms = 1000, step_ms = 100;
  int windows = 16;
  uint64_t window_bytes = 2050;  // 1025 uint16 tokens: one sequence of seq_len 1024
  bool closed_loop = false;
  // No fetches: every call a heartbeat, the smallest RPC (what gRPC itself costs per call).
  bool fetch = true;
  LoadClient client = LoadClient::kH2;
  // Threads that send the workers' calls and take their answers (each worker's calls on one).
  int threads = 1;
  // When several processes share the simulated workers: this process's are ranks first_worker
  // to first_worker + workers - 1 of world (0: workers).
  int first_worker = 0, world = 0;
  // Called once every worker has registered; returns when the timed window starts (processes
  // that share the workers start together). Unset: at once.
  std::function<std::chrono::steady_clock::time_point()> start;
};

// What one process's simulated workers measured; the LoadResult of a run merges every process's.
struct LoadSamples {
  std::vector<double> heartbeat_ms, fetch_ms;  // each timed answered call's latency
  std::vector<double> warmup_ms;               // each answered warm-up call's
  int64_t in_window = 0, errors = 0;           // calls answered (OK) within the timed window; failed calls
  std::map<std::string, int64_t> error_codes;  // by gRPC status name
  double process_cpu_s = 0;                    // this process's, from the first call to the last answer
};

struct LoadResult {
  int64_t heartbeats = 0, fetches = 0, errors = 0;  // timed calls answered; failed calls, warm-up included
  int64_t warmup_calls = 0;
  double warmup_p99_ms = 0;
  std::map<std::string, int64_t> error_codes;  // by gRPC status name
  double seconds = 0;
  double answered_per_s = 0;                  // calls answered within the timed window, per second
  double p50_ms = 0, p99_ms = 0, max_ms = 0;  // over every call
  double heartbeat_p99_ms = 0, fetch_p99_ms = 0;
  double offered_per_s = 0;  // what the schedule asked for (open loop)
  // CPU time of the processes that ran the workers, from the first call (warm-up included) until
  // every call was answered (registration excluded): the simulated workers' alone when the coordinator runs
  // in another process.
  double process_cpu_s = 0;
};

// Runs the load in this process against the coordinator serving `manifest` (its first corpus's
// train split).
LoadSamples run_coordinator_load(const LoadOptions& options, const SharedSecret& secret,
                                 const coordinator::v1::ManifestResponse& manifest);
// Rates, percentiles and totals over the samples of every process that ran `options`' load.
LoadResult summarize_load(const std::vector<LoadSamples>& parts, const LoadOptions& options);

}  // namespace kervan
