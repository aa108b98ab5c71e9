// A job in which world rank 1 never reaches a collective: `stall` sleeps instead, `die` exits.
// The other ranks' all_reduce must end the job with the timeout error (tests/mpi/timeout_test.sh).
#include <mpi.h>
#include <unistd.h>

#include <cstring>

#include "core/cpu/cpu_backend.h"
#include "core/backend.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_runtime.h"

int main(int argc, char** argv) {
  using namespace kervan;
  const bool die = argc > 1 && std::strcmp(argv[1], "die") == 0;
  MpiRuntime mpi;
  MPI_Comm c;
  MPI_Comm_dup(MPI_COMM_WORLD, &c);
  MpiCommunicator comm(c, "data-parallel", /*timeout_s=*/2.0);
  auto be = make_cpu_backend();
  Tensor t = be->zeros({1000});
  comm.all_reduce(t, ReduceOp::Sum);  // everyone arrives once
  if (mpi.world_rank() == 1) {
    if (die) _exit(9);
    sleep(120);
  }
  comm.all_reduce(t, ReduceOp::Sum);  // rank 1 never comes
  return 0;
}
