#include "launcher/metrics_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/paths.h"

namespace kervan {

namespace fs = std::filesystem;

namespace {
constexpr const char* kFirstLine = "{\"step\":";
}

MetricsFile::MetricsFile(const std::string& path, const std::vector<std::string>& inputs) : path_(path) {
  refuse_output_over_input(path, "log.metrics_file", inputs);
  std::error_code ec;
  if (fs::exists(path, ec)) {
    require_file(path, "log.metrics_file");
    std::ifstream existing(path);
    std::string head(std::strlen(kFirstLine), '\0');
    existing.read(head.data(), static_cast<std::streamsize>(head.size()));
    if (existing.gcount() > 0 && head != kFirstLine)
      throw UserError(path +
                      ": log.metrics_file exists and is not a kervan metrics file; kervan replaces only "
                      "its own (choose another path, or move the file)");
  }
  const fs::path dir = fs::path(path).parent_path();
  if (!dir.empty()) fs::create_directories(dir, ec);
  out_.open(path, std::ios::trunc);
  if (!out_) throw UserError(path + ": log.metrics_file: cannot write here: " + std::strerror(errno));
}

void MetricsFile::write_line(const std::string& json) {
  out_ << json << '\n' << std::flush;
  if (!out_) throw EnvironmentError("write", "log.metrics_file '" + path_ + "'", std::strerror(errno));
}

}  // namespace kervan
