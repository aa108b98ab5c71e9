#pragma once
#include <cstdint>

namespace kervan {

// Fault injection for the crash tests: when the environment variable KERVAN_FAILPOINT lists
// `name` (comma-separated entries `name` or `name@N`), the process kills itself with SIGKILL
// here, as a power cut or `kill -9` would; `name@N` fires only where `at` is N (a step).
// Without the variable this is one branch on a cached flag.
void failpoint(const char* name, int64_t at = -1);

}  // namespace kervan
