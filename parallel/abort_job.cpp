// MpiRuntime::abort_job on its own: the CUDA module's NCCL communicator calls it too, and links
// this file rather than the whole MPI runtime. An NCCL group bootstrapped without MPI (a one-rank
// test group) may time out in a process that never initialised MPI: then this process alone ends.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>

#include "parallel/mpi_runtime.h"

namespace kervan {

void MpiRuntime::abort_job(const std::string& message, int exit_code) {
  std::fprintf(stderr, "kervan: error: %s\n", message.c_str());
  std::fflush(stderr);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

}  // namespace kervan
