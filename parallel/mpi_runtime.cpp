#include "parallel/mpi_runtime.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "core/error.h"
#include "parallel/mpi_communicator.h"

namespace kervan {

namespace {
bool g_active = false;
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

MpiRuntime::MpiRuntime() {
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
  if (provided < MPI_THREAD_MULTIPLE) {
    MPI_Finalize();
    throw EnvironmentError("MPI_Init_thread", "this MPI library",
                           "it does not provide MPI_THREAD_MULTIPLE, which kervan needs");
  }
  // Failed MPI calls return their code (every communicator made from the world inherits this),
  // so that MpiCommunicator can name the call and the group instead of MPI aborting bare.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  g_active = true;
}

MpiRuntime::~MpiRuntime() {
  if (std::uncaught_exceptions() > 0) return;  // the handler aborts the job (see header)
  MPI_Finalize();
  g_active = false;
}

bool MpiRuntime::active() {
  return g_active;
}

std::unique_ptr<Communicator> MpiRuntime::group(int color, const std::string& name, double timeout_s) const {
  MPI_Comm comm;
  MPI_Comm_split(MPI_COMM_WORLD, color, rank_, &comm);
  return std::make_unique<MpiCommunicator>(comm, name, timeout_s);
}

std::unique_ptr<Communicator> MpiRuntime::node_group(double timeout_s) const {
  MPI_Comm comm;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &comm);
  return std::make_unique<MpiCommunicator>(comm, "node", timeout_s);
}

void MpiRuntime::abort_job(const std::string& message, int exit_code) {
  std::fprintf(stderr, "kervan: error: %s\n", message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

}  // namespace kervan
