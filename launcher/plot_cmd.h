#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace kervan {

// `kervan plot METRICS.jsonl [MORE.jsonl ...] -o loss.png [--size 1200x900]`: training and
// validation loss against step and against tokens, and throughput, one line per run, drawn by
// gnuplot (Debian's gnuplot-nox). Every input must be a kervan metrics file (JSON lines, each an
// object with an integer "step"): anything else is refused, naming the file and line, before the
// output is touched.
class PlotCommand {
 public:
  explicit PlotCommand(CLI::App& app);
  bool selected() const { return cmd_->parsed(); }
  int run() const;

 private:
  CLI::App* cmd_;
  std::vector<std::string> inputs_;
  std::string out_, size_ = "1200x900";
};

}  // namespace kervan
