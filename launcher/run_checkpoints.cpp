#include "launcher/run_checkpoints.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <variant>

#include "checkpoint/durable_io.h"
#include "checkpoint/format.h"
#include "checkpoint/resume.h"
#include "core/error.h"
#include "core/model/recurrent_config.h"

namespace kervan {

RunCheckpoints::RunCheckpoints(const RunConfig& config, const WriterLayout& layout, Communicator& world,
                               Backend& host, Backend& backend)
    : config_(config), layout_(layout), world_(world), host_(host), backend_(backend) {
  const auto& ck = config.checkpoint;
  if (ck.dir.empty()) return;
  if (world.rank() == 0) {
    claim_checkpoint_dir(ck.dir, "checkpoint.dir");
    lock_ = std::make_unique<DirLock>(ck.dir, "checkpoint.dir");
    if (const int n = remove_stale_parts(ck.dir))
      spdlog::info("checkpoint.dir: removed {} unfinished save(s) left by an earlier job", n);
  }
  world.barrier();
  check_writable(ck.dir, "checkpoint.dir", world.rank());
  CommitOptions commit{layout.world_size, config.parallel.collective_timeout_s, ck.keep_last, ck.keep_every};
  saver_ = std::make_unique<CheckpointSaver>(SaverOptions{ck.dir, ck.async, commit}, layout, backend);
}

void check_same_model(const CheckpointReader& checkpoint, const RunConfig& config, const std::string& key) {
  const auto& values = checkpoint.manifest().values;
  const auto text = [&](const std::string& name) -> const std::string* {
    const auto it = values.find("model_config/" + name);
    return it == values.end() ? nullptr : std::get_if<std::string>(&it->second);
  };
  const std::string where = config.file + ": " + key + " " + checkpoint.folder();
  const std::string* family = text("family");
  if (!family) return;
  if (*family != config.arch)
    throw UserError(where + " holds a " + *family + " model, but model.arch is \"" + config.arch +
                    "\": a checkpoint starts only a model of its own family");
  const GPTConfig& m = config.model;
  std::vector<std::pair<std::string, int64_t>> shape{
      {"n_layer", m.n_layer}, {"n_head", m.n_head}, {"d_model", m.d_model}, {"vocab_size", m.vocab_size}};
  // T5 and the recurrent models have no position table: they continue at any seq_len.
  if (config.arch != "t5" && !is_recurrent_arch(config.arch)) shape.emplace_back("max_seq_len", m.max_seq_len);
  for (const auto& [name, want] : shape) {
    const auto it = values.find("model_config/" + name);
    const int64_t* saved = it == values.end() ? nullptr : std::get_if<int64_t>(&it->second);
    if (saved && *saved != want)
      throw UserError(where + " holds a " + *family + " model with model." + name + " = " +
                      std::to_string(*saved) + ", but this config has " + std::to_string(want));
  }
  if (const std::string* ffn = text("t5_ffn"); ffn && *ffn != config.t5_ffn)
    throw UserError(where + " holds a t5 model with model.t5_ffn = \"" + *ffn + "\", but this config has \"" +
                    config.t5_ffn + "\"");
}

bool RunCheckpoints::start(Model& model, TrainStep& train_step, TrainProgress& progress) {
  const auto& ck = config_.checkpoint;
  const auto warn = [this](const std::string& w) {
    if (world_.rank() == 0) spdlog::warn("{}", w);
  };
  std::unique_ptr<CheckpointReader> from;
  if (ck.resume == "auto") {
    if (!ck.dir.empty()) from = find_resume_checkpoint(ck.dir, ck.strict, world_, host_, warn);
  } else if (ck.resume != "none") {
    from = open_verified(ck.resume, "checkpoint.resume", world_, host_);
  } else if (!ck.dir.empty()) {
    const std::vector<int64_t> steps = committed_steps(ck.dir);
    if (!steps.empty())
      throw UserError(config_.file + ": checkpoint.resume = \"none\", but checkpoint.dir '" + ck.dir +
                      "' holds checkpoints (newest " + step_folder_name(steps.back()) +
                      "); a fresh run would mix with them: use another checkpoint.dir, or resume");
  }
  if (from) {
    resume_from(*from, train_step, progress, ck.resume == "auto");
    resumed_from_ = from->folder();
    return true;
  }
  if (!ck.init_from.empty()) load_weights(ck.init_from, "checkpoint.init_from", model);
  return false;
}

std::vector<std::string> RunCheckpoints::load_weights(const std::string& path, const std::string& key,
                                                      Model& model, const std::string& fresh_prefix) {
  const auto weights = open_verified(path, key, world_, host_);
  check_same_model(*weights, config_, key);
  StateDict state, present;
  model.state(state);
  std::vector<std::string> fresh;
  for (StateTensor& t : state.tensors) {
    if (weights->has(t.name)) {
      present.tensors.push_back(t);
    } else if (!fresh_prefix.empty() && t.name.starts_with(fresh_prefix)) {
      if (fresh.empty() || fresh.back() != t.name) fresh.push_back(t.name);
    } else {
      throw UserError(config_.file + ": " + key + " " + weights->folder() + " has no tensor " + t.name +
                      ": it holds another model than this config's");
    }
  }
  weights->read_tensors(present, backend_);
  model.load_state(state);
  std::string names;
  for (const std::string& n : fresh) names += (names.empty() ? "" : ", ") + n;
  spdlog::info("starting from the model weights of {} ({}), fresh optimizer, step 0{}", weights->folder(),
               key, names.empty() ? "" : "; new, from their initialisation: " + names);
  return fresh;
}

void RunCheckpoints::resume_from(const CheckpointReader& checkpoint, TrainStep& train_step,
                                 TrainProgress& progress, bool fell_back) {
  check_same_model(checkpoint, config_, "checkpoint.resume");
  StateDict state;
  train_step.state(state);
  for (const StateTensor& t : state.tensors)
    if (t.name.starts_with("optim/") && !checkpoint.has(t.name))
      throw UserError(
          checkpoint.folder() + " holds no optimizer state (" + t.name +
          "): a weights-only checkpoint, like those of `kervan ckpt import`, starts a run through "
          "checkpoint.init_from, not checkpoint.resume");
  checkpoint.read_tensors(state, backend_);
  checkpoint.read_values(state);
  train_step.load_state(state);
  progress.load_state(state);
  const Manifest& m = checkpoint.manifest();
  spdlog::info("resumed from {}: step {}, consumed_samples {}, written by {}{}", checkpoint.folder(),
               progress.step, progress.consumed_samples, m.layout.describe(),
               m.layout.dp == layout_.dp && m.layout.tp == layout_.tp && m.layout.zero1 == layout_.zero1
                   ? ""
                   : " (resharded to " + layout_.describe() + ")");
  for (const std::string& change : progress.data_order_changes(state))
    spdlog::warn(
        "the data position of {} refers to another sample order ({}): samples may repeat or be skipped",
        checkpoint.folder(), change);

  // Later checkpoints in the folder would collide with the ones this run is going to save.
  const std::string& dir = config_.checkpoint.dir;
  if (dir.empty()) return;
  std::string newer;
  for (int64_t step : committed_steps(dir))
    if (step > progress.step) newer = step_folder(dir, step);
  if (!newer.empty() && !fell_back)
    throw UserError(config_.file + ": checkpoint.dir '" + dir + "' holds " + newer +
                    ", newer than the resumed " + checkpoint.folder() +
                    "; saving would overwrite it: move it away or resume from it");
  // After a fallback the newer checkpoints are the damaged ones: kept aside, out of the way.
  if (world_.rank() == 0)
    for (int64_t step : committed_steps(dir))
      if (step > progress.step) {
        const std::string from = step_folder(dir, step), aside = from + ".damaged";
        rename_durably(from, aside);
        spdlog::warn("moved the damaged {} aside to {}", from, aside);
      }
  world_.barrier();
}

void RunCheckpoints::handle_failure(const std::exception_ptr& failure) {
  last_saved_ = last_good_;
  if (config_.checkpoint.on_failure == "stop") std::rethrow_exception(failure);
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    spdlog::warn("a checkpoint save failed, training goes on (checkpoint.on_failure = continue): {}",
                 e.what());
  }
}

void RunCheckpoints::after_step(TrainStep& train_step, TrainProgress& progress, bool now) {
  if (!saver_) return;
  const int64_t every = config_.checkpoint.every;
  const bool due = now || (every > 0 && progress.step % every == 0);
  if (!due || progress.step == last_saved_) return;
  try {
    saver_->wait();  // the previous save, still in flight
    last_good_ = last_saved_;
    good_consumed_ = saved_consumed_;
  } catch (...) {
    handle_failure(std::current_exception());
  }
  StateDict state;
  train_step.state(state);
  progress.state(state);
  last_saved_ = progress.step;
  saved_consumed_ = progress.consumed_samples;
  try {
    saver_->save(progress.step, state);
  } catch (...) {  // a synchronous save
    handle_failure(std::current_exception());
  }
  // A synchronous save is over when rank 0 has committed it, on every rank: none goes on (or is
  // killed) while the checkpoint is still being made visible.
  if (!config_.checkpoint.async) world_.barrier();
}

void RunCheckpoints::check_failures() {
  if (!saver_) return;
  if (const std::exception_ptr failure = saver_->take_failure()) handle_failure(failure);
}

std::string RunCheckpoints::finish() {
  if (!saver_) return "";
  try {
    saver_->wait();
    last_good_ = last_saved_;
    good_consumed_ = saved_consumed_;
  } catch (...) {
    handle_failure(std::current_exception());
  }
  return last_good_ >= 0 ? step_folder(config_.checkpoint.dir, last_good_) : "";
}

std::optional<CommittedCheckpoint> RunCheckpoints::take_committed() {
  if (!saver_ || world_.rank() != 0) return std::nullopt;
  if (last_saved_ > last_good_ && !saver_->in_flight()) {  // rank 0's save ends with the commit
    if (const std::exception_ptr failure = saver_->take_failure()) {
      handle_failure(failure);
    } else {
      last_good_ = last_saved_;
      good_consumed_ = saved_consumed_;
    }
  }
  if (last_good_ < 0 || last_good_ == last_taken_) return std::nullopt;
  last_taken_ = last_good_;
  return CommittedCheckpoint{last_good_, good_consumed_, step_folder(config_.checkpoint.dir, last_good_)};
}

}  // namespace kervan
