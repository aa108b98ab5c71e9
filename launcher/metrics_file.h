#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace kervan {

// The JSON-lines metrics of a run (log.metrics_file), written by rank 0.
//
// Opening it never destroys someone else's file: a path that is one of the run's inputs (the
// config, a corpus, a shard) is refused, and so is an existing file that kervan did not write
// (every line of kervan's metrics files is a JSON object with an integer "step"). Every line is
// flushed and checked, so a full disk ends the run (EnvironmentError, exit 4) instead of leaving
// a torn file behind an exit 0.
class MetricsFile {
 public:
  MetricsFile() = default;  // writes nowhere
  // A run resumed at `first_step` keeps the existing lines of the steps before it (a killed run
  // may have logged steps after its last checkpoint: they are trained again and logged anew).
  MetricsFile(const std::string& path, const std::vector<std::string>& inputs, int64_t first_step = 0);
  bool is_open() const { return out_.is_open(); }
  void write_line(const std::string& json);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace kervan
