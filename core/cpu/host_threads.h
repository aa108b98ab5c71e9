#pragma once

namespace kervan {

// The process's compute threads: OpenMP's pool, which the OpenMP build of OpenBLAS shares. One
// owner sets it (the launcher from train.threads, a test, a benchmark); backends only read it, so
// creating a backend never changes another's thread count behind its back.
void set_host_threads(int n);
int host_threads();

}  // namespace kervan
