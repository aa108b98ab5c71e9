#pragma once
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/backend.h"
#include "core/model/model.h"
#include "launcher/job.h"
#include "launcher/run_config.h"
#include "launcher/stop_signals.h"
#include "launcher/training_data.h"
#include "parallel/tensor_parallel.h"

namespace kervan {

class CoordinatedData;

// `kervan train`: the whole command (job, training, sampling). Returns the process exit code.
int run_train(const RunConfig& config);

// Ranks other than 0 log to their own file, next to log.metrics_file ("runs/x/metrics.jsonl" ->
// "runs/x/metrics.rank1.log"), and only errors to the shared terminal; without a metrics file,
// warnings and errors to the terminal.
std::string rank_log_path(const std::string& metrics_file, int rank);
void log_to_rank_file(const RunConfig& cfg, int rank);

// A model trained by train_on_job, with what it was made with.
struct TrainedModel {
  std::unique_ptr<CommunicatorTpGroup> tp_group;  // the model's tensor-parallel group (outlives it)
  std::unique_ptr<Model> model;
  int exit_code = 0;     // kExitNumerical when training stopped on a non-finite loss
  bool stopped = false;  // a stop signal ended training early (after a checkpoint, when configured)
};

// Prints a sample from the model being trained (sample.every); every rank calls it.
using TrainingSampler = std::function<void(Model& model, const std::string& title)>;

// Loss spikes, as llm.c scores them: the z-score of a loss against the last `window` losses.
class LossSpikes {
 public:
  static constexpr size_t kMinHistory = 10;  // no score before this many losses
  static constexpr double kWarnZ = 5.0;      // a warning above this score
  explicit LossSpikes(size_t window = 128);
  // The z-score of `loss` against the losses before it (nullopt while there are too few, or
  // they are all equal); then `loss` joins the window.
  std::optional<double> add(double loss);
  size_t size() const { return losses_.size(); }

 private:
  size_t window_;
  std::deque<double> losses_;
};

// The training of `kervan train` on a started job and its opened data (open_training_data): builds
// model.arch's model and trains it with its objective for train.steps, logging and evaluating as
// configured; checkpoints and resumes per checkpoint.*, and stops at a step boundary (after a
// save) when any rank has received one of `signals`, or `coordinated`'s coordinator asks for a
// stop. With `coordinated` (the data came through a coordinator), every rank reports its progress
// to it and rank 0 commits each checkpoint's data position there.
TrainedModel train_on_job(const RunConfig& cfg, Job& job, Backend& be, TrainingData& data,
                          const StopSignals& signals, CoordinatedData* coordinated = nullptr,
                          const TrainingSampler* sampler = nullptr);

}  // namespace kervan
