#include "checkpoint/format.h"

#include <cstdint>
#include <cstdio>

namespace kervan {

namespace {
std::string numbered(const char* pattern, int64_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, pattern, static_cast<long long>(n));
  return buf;
}
}  // namespace

std::string step_folder_name(int64_t step) {
  return numbered("step_%08lld", step);
}

std::optional<int64_t> parse_step_folder(const std::string& name) {
  constexpr size_t kPrefix = 5;  // "step_"
  if (name.size() <= kPrefix || name.compare(0, kPrefix, "step_") != 0) return std::nullopt;
  int64_t step = 0;
  for (size_t i = kPrefix; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || step > (INT64_MAX - 9) / 10) return std::nullopt;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

std::string rank_file_name(int rank) {
  return numbered("rank_%05lld.h5", rank);
}
std::string rank_record_name(int rank) {
  return numbered("rank_%05lld.json", rank);
}
std::string rank_failure_name(int rank) {
  return numbered("rank_%05lld.failed", rank);
}

}  // namespace kervan
