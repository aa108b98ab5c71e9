#include "launcher/finetune.h"

#include <fmt/format.h>
#include <omp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "checkpoint/failpoint.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "core/error.h"
#include "core/model/generate.h"
#include "core/model/t5.h"
#include "core/rng.h"
#include "datasets/loader/data_loader.h"
#include "datasets/loader/index_permutation.h"
#include "launcher/finetune_data.h"
#include "launcher/job.h"
#include "launcher/metrics_file.h"
#include "launcher/model_setup.h"
#include "launcher/progress.h"
#include "launcher/run_checkpoints.h"
#include "launcher/stop_signals.h"
#include "launcher/text_codec.h"
#include "launcher/train_progress.h"
#include "launcher/training_batches.h"
#include "parallel/tensor_parallel.h"
#include "parallel/train_step.h"

namespace kervan {

namespace {

struct TaskData {
  std::vector<std::string> labels;  // classify
  std::vector<FinetuneExample> train, val;
  std::vector<FinetuneRecord> val_records;  // for showing generations
};

TaskData read_task_data(const RunConfig& c, const TextCodec& codec, bool skip_bad_lines) {
  const FinetuneFile train = read_finetune_file(c.finetune.train, c.finetune.task, skip_bad_lines);
  TaskData d;
  if (c.finetune.task == "classify") d.labels = label_set(c, train);
  d.train = encode_records(train, codec, d.labels, c);
  int64_t skipped = train.skipped;
  if (!c.finetune.val.empty()) {
    const FinetuneFile val = read_finetune_file(c.finetune.val, c.finetune.task, skip_bad_lines);
    d.val = encode_records(val, codec, d.labels, c);
    d.val_records = val.records;
    skipped += val.skipped;
  }
  spdlog::info("fine-tuning data: {} training examples ({}), {} validation{}", d.train.size(),
               c.finetune.train, d.val.size(), skipped ? fmt::format("; {} bad lines skipped", skipped) : "");
  if (!d.labels.empty()) {
    std::string labels;
    for (const std::string& l : d.labels) labels += (labels.empty() ? "" : ", ") + l;
    spdlog::info("labels: {}", labels);
  }
  return d;
}

// The sample order of fine-tuning: a fresh permutation of the examples every epoch, keyed by the
// seed, sample k of the run being example perm_{k / N}(k mod N).
class ExampleOrder {
 public:
  ExampleOrder(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  int64_t at(int64_t k) {
    const int64_t epoch = k / n_;
    if (epoch != epoch_) {
      perm_.emplace(n_, stream_key(seed_, "finetune.epoch." + std::to_string(epoch)));
      epoch_ = epoch;
    }
    return static_cast<int64_t>((*perm_)(static_cast<uint64_t>(k % n_)));
  }

 private:
  int64_t n_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::optional<IndexPermutation> perm_;
};

struct Evaluation {
  double loss = 0;
  int64_t examples = 0;
  int64_t correct = 0;                                  // classify: right labels; text2text: exact matches
  std::vector<int64_t> true_pos, false_pos, false_neg;  // classify, per class
  std::vector<std::string> shown;                       // text2text, the leader's first generations
};

// Evaluates the validation examples: each data-parallel replica takes every dp-th one (its TP ranks
// the same), and the sums are taken over the replicas.
Evaluation evaluate(Model& model, const TaskData& data, const RunConfig& c, const SpecialTokens& sp,
                    const TextCodec& codec, Job& job, Backend& be) {
  const bool classify = c.finetune.task == "classify";
  const int64_t K = static_cast<int64_t>(data.labels.size());
  std::vector<const FinetuneExample*> mine;
  std::vector<int64_t> index;
  for (int64_t i = job.grid.dp_rank; i < static_cast<int64_t>(data.val.size()); i += job.grid.dp) {
    mine.push_back(&data.val[i]);
    index.push_back(i);
  }
  Evaluation ev;
  ev.true_pos.assign(K, 0);
  ev.false_pos.assign(K, 0);
  ev.false_neg.assign(K, 0);
  double loss = 0, predicted = 0;
  ExampleBatch ex;
  for (size_t first = 0; first < mine.size(); first += c.train.micro_batch) {
    const std::vector<const FinetuneExample*> chunk(
        mine.begin() + first, mine.begin() + std::min(mine.size(), first + c.train.micro_batch));
    make_finetune_batch(c, sp, chunk, ex);
    const float mean = model.forward(batch_view(ex));
    loss += mean * static_cast<double>(model.predicted_positions());
    predicted += static_cast<double>(model.predicted_positions());
    if (!classify) continue;
    const std::vector<float> logits = model.class_logits();
    for (size_t b = 0; b < chunk.size(); ++b) {
      const int64_t guess = std::max_element(logits.begin() + b * K, logits.begin() + (b + 1) * K) -
                            logits.begin() - static_cast<int64_t>(b) * K;
      const int64_t truth = chunk[b]->label;
      ev.correct += guess == truth;
      if (guess == truth) {
        ++ev.true_pos[truth];
      } else {
        ++ev.false_pos[guess];
        ++ev.false_neg[truth];
      }
    }
  }
  if (!classify) {  // exact match of greedy generations
    const auto eot = static_cast<int32_t>(sp.eot);
    const int64_t m = c.finetune.max_target_len;
    for (size_t i = 0; i < mine.size(); ++i) {
      const FinetuneExample& e = *mine[i];
      std::vector<int32_t> out;
      if (c.arch == "t5") {
        std::vector<int32_t> input(e.input.begin(),
                                   e.input.begin() + std::min<int64_t>(e.input.size(), c.train.seq_len - 1));
        input.push_back(eot);
        out = greedy_seq2seq(static_cast<T5&>(model), input, sp.pad(), eot, m);
      } else {
        const int64_t keep = std::min<int64_t>(e.input.size(), c.train.seq_len - m - 1);
        std::vector<int32_t> prompt(e.input.end() - keep, e.input.end());
        prompt.push_back(eot);
        out = generate(model, prompt, c.train.seq_len, {m, 0.0f, 0, 0, eot});
        out.erase(out.begin(), out.begin() + static_cast<int64_t>(prompt.size()));
      }
      if (!out.empty() && out.back() == eot) out.pop_back();
      const std::vector<int32_t> want(e.target.begin(),
                                      e.target.begin() + std::min<int64_t>(e.target.size(), m - 1));
      ev.correct += out == want;
      if (static_cast<int64_t>(ev.shown.size()) < c.finetune.show)
        ev.shown.push_back(fmt::format("{}\n    input:  {}\n    target: {}\n    output: {}",
                                       data.val_records[index[i]].where, data.val_records[index[i]].input,
                                       data.val_records[index[i]].output, codec.decode(out)));
    }
  }
  std::vector<double> sums{loss, predicted, static_cast<double>(mine.size()),
                           static_cast<double>(ev.correct)};
  for (const auto* v : {&ev.true_pos, &ev.false_pos, &ev.false_neg})
    for (const int64_t x : *v) sums.push_back(static_cast<double>(x));
  sums = sum_over(*job.dp, be, sums);
  ev.loss = sums[1] > 0 ? sums[0] / sums[1] : 0;
  ev.examples = static_cast<int64_t>(sums[2]);
  ev.correct = static_cast<int64_t>(sums[3]);
  for (int64_t k = 0; k < K; ++k) {
    ev.true_pos[k] = static_cast<int64_t>(sums[4 + k]);
    ev.false_pos[k] = static_cast<int64_t>(sums[4 + K + k]);
    ev.false_neg[k] = static_cast<int64_t>(sums[4 + 2 * K + k]);
  }
  return ev;
}

double ratio(int64_t a, int64_t b) {
  return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
}

// Logs an evaluation and adds it to the step's metrics.
void report(const Evaluation& ev, const TaskData& data, const RunConfig& c, int64_t step, nlohmann::json& j) {
  j["val_loss"] = ev.loss;
  j["val_examples"] = ev.examples;
  if (c.finetune.task == "classify") {
    const double accuracy = ratio(ev.correct, ev.examples);
    j["val_accuracy"] = accuracy;
    std::string per_class;
    for (size_t k = 0; k < data.labels.size(); ++k) {
      const double p = ratio(ev.true_pos[k], ev.true_pos[k] + ev.false_pos[k]);
      const double r = ratio(ev.true_pos[k], ev.true_pos[k] + ev.false_neg[k]);
      j["val_precision"][data.labels[k]] = p;
      j["val_recall"][data.labels[k]] = r;
      per_class += fmt::format(" | {}: precision {:.3f} recall {:.3f}", data.labels[k], p, r);
    }
    spdlog::info("step {:>5} | validation loss {:.4f} | accuracy {:.4f} ({} of {}){}", step, ev.loss,
                 accuracy, ev.correct, ev.examples, per_class);
    return;
  }
  j["val_exact_match"] = ratio(ev.correct, ev.examples);
  spdlog::info("step {:>5} | validation loss {:.4f} | exact match {:.4f} ({} of {})", step, ev.loss,
               ratio(ev.correct, ev.examples), ev.correct, ev.examples);
  for (const std::string& s : ev.shown) spdlog::info("generated for {}", s);
}

}  // namespace

int run_finetune(const RunConfig& cfg, bool skip_bad_lines) {
  const StopSignals signals;  // from now on a signal stops the run at a step boundary (after a save)
  const auto& t = cfg.train;
  Job job = start_job(cfg);
  if (!job.leader()) spdlog::set_level(spdlog::level::warn);
  set_host_threads(t.threads > 0 ? static_cast<int>(t.threads) : omp_get_num_procs());
  auto be = make_cpu_backend();
  check_same_config(cfg, job, *be);

  const TextCodec codec(cfg.data.tokenizer);
  SpecialTokens specials;
  try {
    specials = SpecialTokens::make(cfg.arch, codec.vocab_size(), codec.eot(), cfg.model.vocab_size);
  } catch (const UserError& e) {
    throw UserError(cfg.file + ": " + e.what() + " (data.tokenizer '" + cfg.data.tokenizer + "')");
  }
  const TaskData data = read_task_data(cfg, codec, skip_bad_lines);
  const bool classify = cfg.finetune.task == "classify";

  // The checkpoint folder is checked (locked, writable on every rank) before anything is built.
  const WriterLayout layout{
      job.grid.world_size, job.grid.dp,      job.grid.tp,     cfg.parallel.zero == 1 && job.grid.dp > 1,
      job.grid.world_rank, job.grid.dp_rank, job.grid.tp_rank};
  RunCheckpoints checkpoints(cfg, layout, *job.world, *be, *be);  // both on the host: finetune runs on the CPU

  CommunicatorTpGroup tp_group(*job.tp);
  std::unique_ptr<Model> model_ptr =
      make_model(cfg, *be, t.micro_batch, job.grid.tp > 1 ? &tp_group : nullptr, cfg.finetune.max_target_len,
                 classify ? static_cast<int64_t>(data.labels.size()) : 0);
  Model& model = *model_ptr;
  model.init_weights(static_cast<uint64_t>(t.seed));
  TrainStep train_step(model, {t.beta1, t.beta2, t.eps, t.weight_decay},
                       {job.dp.get(), job.tp.get(), cfg.parallel.zero == 1,
                        static_cast<int64_t>(cfg.parallel.bucket_mb * 1e6)});
  const LrSchedule schedule = cfg.schedule();
  const int64_t dp = job.grid.dp, B = t.micro_batch, per_step = B * dp * t.grad_accum;

  // A fine-tuning run resumes like a training run (its own checkpoints: the head, the optimizer,
  // the position in the example order); otherwise it starts from finetune.init_from's weights,
  // the classification head from its initialisation.
  TrainProgress progress(cfg, {cfg.finetune.train}, {1.0});
  const bool resumed = checkpoints.start(model, train_step, progress);
  if (!resumed && !cfg.finetune.init_from.empty())
    checkpoints.load_weights(cfg.finetune.init_from, "finetune.init_from", model, "model/cls.");
  if (resumed && progress.step >= t.steps)
    spdlog::info("the checkpoint is at step {}, train.steps = {}: nothing left to train", progress.step,
                 t.steps);
  spdlog::info("fine-tuning {} ({}): {} steps of {} examples ({:.1f} epochs); {}", cfg.arch,
               cfg.finetune.task, t.steps, per_step,
               static_cast<double>(t.steps * per_step) / static_cast<double>(data.train.size()),
               job.grid.describe());

  MetricsFile metrics;
  if (job.leader() && !cfg.log.metrics_file.empty()) {
    std::vector<std::string> inputs{cfg.file, cfg.finetune.train};
    if (!cfg.finetune.val.empty()) inputs.push_back(cfg.finetune.val);
    metrics = MetricsFile(cfg.log.metrics_file, inputs, progress.step);
  }

  ExampleOrder order(static_cast<int64_t>(data.train.size()), static_cast<uint64_t>(t.seed));
  std::vector<ExampleBatch> micro(t.grad_accum);
  TrainingBar bar(job.leader() && StatusLine::stderr_is_terminal(), progress.step, t.steps);
  for (int64_t step = progress.step; step < t.steps; ++step) {
    failpoint("train_step", step);  // the crash tests: SIGKILL here (checkpoint/failpoint.h)
    const auto t0 = std::chrono::steady_clock::now();
    // This rank's micro-batches of the step, and how many positions each predicts: the loss is
    // the mean over the whole global batch's predicted positions, whatever the layout.
    double mine = 0;
    std::vector<double> counts(t.grad_accum);
    for (int64_t m = 0; m < t.grad_accum; ++m) {
      std::vector<const FinetuneExample*> chunk;
      for (int64_t b = 0; b < B; ++b)
        chunk.push_back(&data.train[order.at(
            first_sample_of(progress.consumed_samples, m, dp, job.grid.dp_rank, B) + b)]);
      make_finetune_batch(cfg, specials, chunk, micro[m]);
      mine += counts[m] = static_cast<double>(micro[m].predicted());
    }
    const double total = sum_over(*job.dp, *be, {mine})[0];
    model.params().zero_grad(*be);
    double loss = 0;
    for (int64_t m = 0; m < t.grad_accum; ++m) {
      const float mean = model.forward(batch_view(micro[m]));
      loss += mean * counts[m] / total;
      if (m == t.grad_accum - 1) train_step.before_last_backward();
      // Gradients are averaged over the dp replicas: dp x count / total weighs each position once.
      model.backward(static_cast<float>(static_cast<double>(dp) * counts[m] / total));
    }
    const float norm = train_step.reduce_gradients();
    const float lr = schedule.at(step);
    train_step.step(lr, clip_factor(norm, t.grad_clip));
    loss = sum_over(*job.dp, *be, {loss})[0];
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      spdlog::error("step {}: loss {} / grad norm {} is not finite; stopping", step, loss, norm);
      return kExitNumerical;
    }
    nlohmann::json j = {{"step", step},
                        {"loss", loss},
                        {"predicted", static_cast<int64_t>(total)},
                        {"lr", lr},
                        {"grad_norm", norm},
                        {"ms_per_step", secs * 1e3},
                        {"examples_seen", progress.consumed_samples + per_step}};
    if (step % cfg.log.every == 0 || step == t.steps - 1)
      spdlog::info("step {:>5}/{} | loss {:.4f} | {} predicted | lr {:.2e} | grad norm {:.3f} | {:.0f} ms",
                   step, t.steps, loss, static_cast<int64_t>(total), lr, norm, secs * 1e3);
    const bool eval_now =
        t.eval_every > 0 ? (step + 1) % t.eval_every == 0 || step == t.steps - 1 : step == t.steps - 1;
    if (!data.val.empty() && eval_now)
      report(evaluate(model, data, cfg, specials, codec, job, *be), data, cfg, step, j);
    if (metrics.is_open()) metrics.write_line(j.dump());

    progress.step = step + 1;
    progress.consumed_samples += per_step;
    double tokens = 0;  // the step's padded windows, the same shapes on every replica
    for (const ExampleBatch& b : micro) tokens += static_cast<double>(b.B * b.T * dp);
    bar.step_done(progress.step, tokens);
    checkpoints.check_failures();
    const int stop = agreed_stop_signal(signals, *job.world, *be);
    checkpoints.after_step(train_step, progress, /*now=*/stop != 0 || progress.step == t.steps);
    if (stop) {
      const std::string saved = checkpoints.finish();
      if (job.leader())
        spdlog::info("stopped by {} after step {}: {}", signal_name(stop), progress.step,
                     saved.empty() ? std::string("nothing saved (no checkpoint.dir)")
                                   : "checkpoint saved to " + saved);
      return kExitOk;
    }
  }
  const std::string saved = checkpoints.finish();
  if (!saved.empty()) spdlog::info("last checkpoint: {}", saved);
  job.world->barrier();
  return 0;
}

}  // namespace kervan
