// Runs before anything else in the kervan binary (a constructor of the highest priority) and is
// compiled for plain x86-64: a node whose CPU lacks the level the binary was built for gets one
// clear line and exit code 4 instead of dying with SIGILL somewhere in the first kernel.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace {

__attribute__((constructor(101))) void require_cpu_level() {
  __builtin_cpu_init();  // this constructor may run before libgcc's, which fills in the CPU model
  // KERVAN_MARCH is "native" (the build machine's own CPU: nothing portable to check) or an
  // x86-64 level that __builtin_cpu_supports knows.
  if (std::strcmp(KERVAN_MARCH, "x86-64-v3") == 0 && !__builtin_cpu_supports("x86-64-v3")) {
    std::fprintf(
        stderr,
        "kervan: error: this CPU lacks x86-64-v3 (AVX2, FMA, BMI2), which this kervan binary was built "
        "for; rebuild it on this machine with -DKERVAN_MARCH=native\n");
    std::_Exit(kervan::kExitEnvironment);
  }
}

}  // namespace
