#pragma once
#include <CLI/CLI.hpp>

#include "launcher/bench.h"

namespace kervan {

// `kervan bench gemm|allreduce|loader|train|checkpoint|coordinator|generate|attention`: registers itself on
// the app with every option range-checked at parsing (a bad value is a usage error, exit 2, before anything
// runs); main() asks selected() after parsing and then calls run().
class BenchCommand {
 public:
  explicit BenchCommand(CLI::App& app);
  BenchCommand(const BenchCommand&) = delete;
  BenchCommand& operator=(const BenchCommand&) = delete;

  bool selected() const { return cmd_->parsed(); }
  int run() const;

 private:
  CLI::App *cmd_, *gemm_, *allreduce_, *loader_, *train_, *checkpoint_, *coordinator_, *generate_,
      *attention_;
  int64_t gemm_n_ = 2048, gemm_threads_ = 1;
  std::vector<int64_t> gemm_shape_;  // m, n, k; empty: --size cubed
  bool gemm_trans_a_ = false, gemm_trans_b_ = false;
  int gemm_reps_ = 5;
  int64_t ar_min_ = 4096, ar_max_ = 256 << 20;
  int ar_reps_ = 5;
  BenchLoaderOptions loader_opt_;
  BenchTrainOptions train_opt_;
  BenchCheckpointOptions checkpoint_opt_;
  BenchCoordinatorOptions coordinator_opt_;
  BenchGenerateOptions generate_opt_;
  BenchAttentionOptions attention_opt_;
};

}  // namespace kervan
