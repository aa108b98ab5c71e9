#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace kervan {

// `kervan study recurrent --config STUDY.toml [--probe-only]`: the recurrent study
// (docs/recurrent-study.md). It is a driver over `kervan train` (bench/recurrent_study.py, run
// with /usr/bin/python3): a C++ copy would duplicate the trainer. The two measurements the trainer cannot make are commands of
// their own, on a run's config (`kervan train`'s) and, optionally, a checkpoint of it:
//
//   kervan study grad-norms --config RUN.toml [--checkpoint DIR] [--batches N]
//     (c): d(loss at the last position)/d(state at each position back from it), the norm averaged
//     over N validation windows (Model::record_position_grad_norms), at initialisation (no
//     --checkpoint: the weights train.seed draws) or of a checkpoint's weights.
//   kervan study recall --config RUN.toml --checkpoint DIR [--documents N]
//     (d): the fraction of validation documents whose last token (before the end-of-text) is the
//     model's most likely next token after the rest of the document; the mean cross-entropy of
//     that token (nats) and its mean probability.
//
// Each prints one JSON object on stdout.
class StudyCommand {
 public:
  explicit StudyCommand(CLI::App& app);
  bool selected() const { return cmd_->parsed(); }
  int run() const;

 private:
  int run_recurrent() const;
  int run_grad_norms() const;
  int run_recall() const;

  CLI::App *cmd_, *recurrent_, *grad_norms_, *recall_;
  std::string study_config_, run_config_, checkpoint_;
  int64_t batches_ = 4, documents_ = 0;
  bool probe_only_ = false;
};

}  // namespace kervan
