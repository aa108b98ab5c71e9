#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/cpu/cpu_backend.h"
#include "core/backend.h"
#include "core/error.h"
#include "launcher/bench.h"
#include "parallel/mpi_runtime.h"

namespace kervan {

namespace {

using Clock = std::chrono::steady_clock;

// Median seconds of `reps` timed calls of fn (after one warm-up), agreed on by all ranks (max).
template <typename F>
double time_collective(int reps, F&& fn) {
  std::vector<double> t;
  for (int i = 0; i <= reps; ++i) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = Clock::now();
    fn();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (i > 0) t.push_back(s);
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  double med = t[t.size() / 2], worst = 0;
  MPI_Allreduce(&med, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

}  // namespace

// Bus bandwidth as nccl-tests define it: busbw = (bytes / time) * 2 (n - 1) / n.
int run_bench_allreduce(int64_t min_bytes, int64_t max_bytes, int reps) {
  if (!launched_by_mpi()) throw UserError("bench allreduce: start it under mpirun (e.g. mpirun -np 2 kervan bench allreduce)");
  MpiRuntime mpi;
  const int n = mpi.world_size();
  auto comm = mpi.group(0, "world", 600.0);
  auto be = make_cpu_backend();
  for (int64_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
    const int64_t count = bytes / 4;
    Tensor ours = be->zeros({count}), raw = be->zeros({count});
    // Interleaved (ours, raw, ours, raw, ...) so drift in machine load hits both alike.
    std::vector<double> t_ours_all, t_raw_all;
    for (int round = 0; round < 3; ++round) {
      t_ours_all.push_back(time_collective(reps, [&] { comm->all_reduce(ours, ReduceOp::Sum); }));
      t_raw_all.push_back(time_collective(reps, [&] {
        MPI_Allreduce(MPI_IN_PLACE, raw.raw(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      }));
    }
    const double t_ours = *std::min_element(t_ours_all.begin(), t_ours_all.end());
    const double t_raw = *std::min_element(t_raw_all.begin(), t_raw_all.end());
    const double factor = 2.0 * (n - 1) / n;
    if (mpi.world_rank() == 0) {
      nlohmann::json j = {{"bench", "allreduce"},
                          {"ranks", n},
                          {"bytes", bytes},
                          {"kervan_us", t_ours * 1e6},
                          {"mpi_us", t_raw * 1e6},
                          {"kervan_busbw_gbs", bytes / t_ours * factor / 1e9},
                          {"mpi_busbw_gbs", bytes / t_raw * factor / 1e9},
                          {"kervan_over_mpi", t_raw / t_ours}};
      std::printf("%s\n", j.dump().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace kervan
