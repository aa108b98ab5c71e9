// GoogleTest main for tests that run under mpirun: MPI up for the whole binary, and only rank 0
// prints results (every rank still asserts; a failure on any rank fails the run's exit code).
// Each rank computes on one thread: the tests run up to 4 ranks on machines with 2 cores, where
// OpenMP's default of a thread per core per rank made ranks spin against each other (mpi.np4
// took 4 minutes instead of seconds).
#include <gtest/gtest.h>
#include <mpi.h>

#include "core/cpu/host_threads.h"
#include "parallel/mpi_runtime.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  kervan::MpiRuntime mpi;
  kervan::set_host_threads(1);
  if (mpi.world_rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0, any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any_failed;
}
