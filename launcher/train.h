#pragma once
#include <memory>
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

// A model trained by train_on_job, with what it was made with.
struct TrainedModel {
  std::unique_ptr<CommunicatorTpGroup> tp_group;  // the model's tensor-parallel group (outlives it)
  std::unique_ptr<Model> model;
  int exit_code = 0;     // kExitNumerical when training stopped on a non-finite loss
  bool stopped = false;  // a stop signal ended training early (after a checkpoint, when configured)
};

// The training of `kervan train` on a started job and its opened data (open_training_data): builds
// model.arch's model and trains it with its objective for train.steps, logging and evaluating as
// configured; checkpoints and resumes per checkpoint.*, and stops at a step boundary (after a
// save) when any rank has received one of `signals`, or `coordinated`'s coordinator asks for a
// stop. With `coordinated` (the data came through a coordinator), every rank reports its progress
// to it and rank 0 commits each checkpoint's data position there.
TrainedModel train_on_job(const RunConfig& cfg, Job& job, Backend& be, TrainingData& data,
                          const StopSignals& signals, CoordinatedData* coordinated = nullptr);

}  // namespace kervan
