#include "launcher/train_progress.h"

#include <variant>

#include "checkpoint/gpt2_weights.h"

namespace kervan {

TrainProgress::TrainProgress(const RunConfig& config, std::vector<std::string> sources,
                             std::vector<double> weights)
    : config_(config), sources_(std::move(sources)), weights_(std::move(weights)) {}

void TrainProgress::state(StateDict& out) {
  out.values["train/step"] = step;
  out.values["train/consumed_samples"] = consumed_samples;
  out.values["rng/seed"] = config_.train.seed;
  out.values["data/sources"] = sources_;
  out.values["data/weights"] = weights_;
  out.values["data/seq_len"] = config_.train.seq_len;
  if (!served_corpora.empty()) out.values["data/served_corpora"] = served_corpora;
  out.values["run/config"] = config_.canonical();
  put_gpt_config(out.values, config_.model);
  out.values["model_config/family"] = config_.arch;  // the shape keys are the same for every family
  if (config_.arch == "t5") out.values["model_config/t5_ffn"] = config_.t5_ffn;
}

void TrainProgress::load_state(const StateDict& in) {
  step = in.value<int64_t>("train/step");
  consumed_samples = in.value<int64_t>("train/consumed_samples");
}

std::vector<std::string> TrainProgress::data_order_changes(const StateDict& saved) const {
  std::vector<std::string> out;
  if (saved.value<int64_t>("rng/seed") != config_.train.seed)
    out.push_back("train.seed was " + std::to_string(saved.value<int64_t>("rng/seed")));
  if (saved.value<int64_t>("data/seq_len") != config_.train.seq_len)
    out.push_back("train.seq_len was " + std::to_string(saved.value<int64_t>("data/seq_len")));
  if (saved.value<std::vector<std::string>>("data/sources") != sources_) {
    std::string was;
    for (const std::string& s : saved.value<std::vector<std::string>>("data/sources"))
      was += (was.empty() ? "" : ", ") + s;
    out.push_back("data.path was " + was);
  } else if (saved.value<std::vector<double>>("data/weights") != weights_) {
    out.push_back("the blend weights differ");
  }
  const auto it = saved.values.find("data/served_corpora");
  const auto* was = it == saved.values.end() ? nullptr : std::get_if<std::vector<std::string>>(&it->second);
  if (was && !served_corpora.empty() && *was != served_corpora) {
    std::string text;
    for (const std::string& s : *was) text += (text.empty() ? "" : ", ") + s;
    out.push_back("the coordinator served other corpora (name and fingerprint: " + text + ")");
  }
  return out;
}

}  // namespace kervan
