#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/paths.h"
#include "datasets/loader/data_loader.h"
#include "launcher/bench.h"

namespace kervan {

// Times the training loader alone: batches of [batch, seq + 1] tokens in the run's shuffled
// (and, with several sources, blended) order, one thread, as the trainer calls it.
int run_bench_loader(const BenchLoaderOptions& opt) {
  if (opt.paths.empty()) throw UserError("bench loader: give one or more --data paths");
  if (!opt.weights.empty() && opt.weights.size() != opt.paths.size())
    throw UserError("bench loader: --weights needs one weight per --data path");
  refuse_repeated_files(opt.paths, "--data path");  // a blend of a corpus with itself is a mistake
  const auto t_open = std::chrono::steady_clock::now();
  std::vector<DataLoader::Source> sources;
  for (size_t i = 0; i < opt.paths.size(); ++i) {
    auto tokens = std::make_unique<TokenSource>(opt.paths[i], "train", int64_t{1} << 32);
    const double w = opt.weights.empty() ? static_cast<double>(tokens->num_tokens()) : opt.weights[i];
    sources.push_back({std::move(tokens), w});
  }
  DataLoader loader(std::move(sources), opt.seq, 1234);
  const double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_open).count();

  std::vector<int32_t> inputs(opt.batch * opt.seq), targets(inputs.size());
  int64_t checksum = 0;  // keeps the reads from being optimised away
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < opt.batches; ++b) {
    loader.fill_batch(opt.first_sample + b * opt.batch, opt.batch, inputs.data(), targets.data());
    checksum += inputs[b % inputs.size()];
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const nlohmann::json j = {{"bench", "loader"},
                            {"sources", opt.paths.size()},
                            {"batch", opt.batch},
                            {"seq", opt.seq},
                            {"batches", opt.batches},
                            {"open_and_verify_s", open_s},
                            {"batches_per_s", opt.batches / secs},
                            {"tokens_per_s", static_cast<double>(opt.batches * opt.batch * opt.seq) / secs},
                            {"peak_rss_mb", ru.ru_maxrss / 1024.0},
                            {"checksum", checksum}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace kervan
