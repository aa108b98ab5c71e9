#include "launcher/metrics_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/paths.h"

namespace kervan {

namespace fs = std::filesystem;

namespace {

// The step of a metrics line, or -1 when the line is not one kervan writes.
int64_t step_of(const std::string& line) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) return -1;
  return j["step"].get<int64_t>();
}

}  // namespace

MetricsFile::MetricsFile(const std::string& path, const std::vector<std::string>& inputs, int64_t first_step)
    : path_(path) {
  refuse_output_over_input(path, "log.metrics_file", inputs);
  std::error_code ec;
  std::string kept;
  if (fs::exists(path, ec)) {
    require_file(path, "log.metrics_file");
    std::ifstream existing(path);
    std::string line;
    if (std::getline(existing, line) && step_of(line) < 0)
      throw UserError(path +
                      ": log.metrics_file exists and is not a kervan metrics file; kervan replaces only "
                      "its own (choose another path, or move the file)");
    for (; existing && first_step > 0; std::getline(existing, line)) {
      const int64_t step = step_of(line);
      if (step >= 0 && step < first_step) kept += line + "\n";
    }
  }
  const fs::path dir = fs::path(path).parent_path();
  if (!dir.empty()) fs::create_directories(dir, ec);
  out_.open(path, std::ios::trunc);
  if (!out_) throw_io_error(path, "log.metrics_file: cannot write here", errno ? errno : EIO);
  out_ << kept << std::flush;
}

void MetricsFile::write_line(const std::string& json) {
  out_ << json << '\n' << std::flush;
  if (!out_) throw EnvironmentError("write", "log.metrics_file '" + path_ + "'", std::strerror(errno));
}

}  // namespace kervan
