#include "checkpoint/failpoint.h"

#include <csignal>
#include <cstdlib>
#include <sstream>
#include <string>

namespace kervan {

void failpoint(const char* name, int64_t at) {
  static const char* const armed = std::getenv("KERVAN_FAILPOINT");
  if (!armed) return;
  std::istringstream entries{std::string(armed)};
  std::string entry;
  while (std::getline(entries, entry, ',')) {
    const size_t sep = entry.find('@');
    if (entry.substr(0, sep) != name) continue;
    if (sep == std::string::npos || std::stoll(entry.substr(sep + 1)) == at) std::raise(SIGKILL);
  }
}

}  // namespace kervan
