#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/manifest.h"
#include "checkpoint/reader.h"
#include "checkpoint/saver.h"
#include "launcher/run_config.h"
#include "launcher/train_progress.h"
#include "parallel/train_step.h"

namespace kervan {

// The model a checkpoint holds (its model_config/* values, written by TrainProgress) against the
// one `config` describes: another family or shape is a UserError naming it, the checkpoint and
// `key` (the config key or flag that named it). A checkpoint without these values (none written
// by kervan) is left to the tensor checks.
void check_same_model(const CheckpointReader& checkpoint, const RunConfig& config, const std::string& key);

// A checkpoint known to be committed, with the data position it holds.
struct CommittedCheckpoint {
  int64_t step = 0;
  int64_t consumed_samples = 0;
  std::string folder;
};

// What `kervan train` does with checkpoints (the checkpoint.* keys): find the folder usable at
// start-up, resume or start from given weights, save at the right steps, and report failures.
class RunCheckpoints {
 public:
  // Collective over `world`, whose collectives take `host`'s tensors (an MPI group: launcher/job.h);
  // the model's and optimizer's tensors are `backend`'s. With checkpoint.dir: rank 0 creates and locks it (a second job is
  // refused) and removes what killed jobs left; then every rank checks it can write there, so an
  // unusable folder stops the run now rather than at the first save.
  RunCheckpoints(const RunConfig& config, const WriterLayout& layout, Communicator& world, Backend& host,
                 Backend& backend);

  // Collective. Resumes per checkpoint.resume (model, optimizer and progress, from any layout),
  // or when there is nothing to resume, loads checkpoint.init_from's weights into the model.
  // Returns whether it resumed.
  bool start(Model& model, TrainStep& train_step, TrainProgress& progress);

  // Collective. Loads the model weights of the checkpoint at `path` (the config key `key` names it
  // in errors) into `model`, whatever layout wrote them. The checkpoint must hold a model of the
  // config's family and shape (a mismatch is a UserError naming the family or the model.* key);
  // a tensor of the model that the checkpoint lacks is an error too, unless its name starts with
  // `fresh_prefix` (fine-tuning's new head): such tensors keep their initialisation and are
  // returned. The checkpoint's own tensors that the model lacks (an LM head) are not read.
  std::vector<std::string> load_weights(const std::string& path, const std::string& key, Model& model,
                                        const std::string& fresh_prefix = "");

  // After an optimizer step (progress.step counts it): saves when checkpoint.every is due, or
  // when `now` (the last step, a stop signal). Nothing without checkpoint.dir.
  void after_step(TrainStep& train_step, TrainProgress& progress, bool now);
  // A background save that has failed: thrown (checkpoint.on_failure = stop: the run ends with
  // exit code 4) or logged (continue: training goes on).
  void check_failures();
  // Waits for the save in flight, its failure handled like check_failures'. Returns the folder of
  // the last checkpoint saved ("" when none was).
  std::string finish();

  bool enabled() const { return saver_ != nullptr; }
  // The checkpoint folder start() resumed from ("" when it did not resume).
  const std::string& resumed_from() const { return resumed_from_; }
  // Rank 0: the newest checkpoint committed since the last call, once (a background save counts
  // when it has finished without failure; a failure is handled like check_failures'). Other ranks
  // (whose saver does not commit) and runs without checkpoint.dir: none.
  std::optional<CommittedCheckpoint> take_committed();

 private:
  // Applies checkpoint.on_failure to a failed save.
  void handle_failure(const std::exception_ptr& failure);
  void resume_from(const CheckpointReader& checkpoint, TrainStep& train_step, TrainProgress& progress,
                   bool fell_back);

  const RunConfig& config_;
  WriterLayout layout_;
  Communicator& world_;
  Backend& host_;  // the tensors of world_'s collectives
  Backend& backend_;
  std::unique_ptr<DirLock> lock_;  // rank 0
  std::unique_ptr<CheckpointSaver> saver_;
  int64_t last_saved_ = -1;                         // the last save started
  int64_t last_good_ = -1;                          // the last save known to have succeeded
  int64_t saved_consumed_ = 0, good_consumed_ = 0;  // consumed_samples of those two
  int64_t last_taken_ = -1;                         // what take_committed() last returned
  std::string resumed_from_;
};

}  // namespace kervan
