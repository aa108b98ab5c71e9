#include "parallel/mpi_runtime.h"

#include <mpi.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "core/error.h"
#include "parallel/mpi_communicator.h"

namespace kervan {

namespace {
bool g_active = false;

// A positive number of seconds from the environment variable `name`, or `fallback` when unset.
double seconds_from_env(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (!v) return fallback;
  char* end = nullptr;
  errno = 0;
  const double s = std::strtod(v, &end);
  if (errno || end == v || *end || !(s > 0) || s > 1e7)
    throw UserError(std::string(name) + "='" + v + "': expected a number of seconds above 0");
  return s;
}

// Ends this process with exit 4 when `done` has not been set within `timeout_s`.
class Deadline {
 public:
  Deadline(double timeout_s, std::string message)
      : thread_([this, timeout_s, message = std::move(message)] {
          std::unique_lock lock(mutex_);
          if (!wake_.wait_for(lock, std::chrono::duration<double>(timeout_s), [this] { return done_; })) {
            std::fprintf(stderr, "kervan: error: %s\n", message.c_str());
            std::fflush(stderr);
            std::_Exit(kExitEnvironment);
          }
        }) {}
  ~Deadline() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

MpiRuntime::MpiRuntime() {
  const double startup_s = seconds_from_env("KERVAN_STARTUP_TIMEOUT_S", 300);
  const double grace_s = seconds_from_env("KERVAN_ORPHAN_GRACE_S", 600);
  {
    const Deadline deadline(
        startup_s,
        "MPI start-up: this rank waited " + std::to_string(static_cast<int64_t>(startup_s)) +
            " s for the other ranks of the job (a rank that did not start, or a node the launcher cannot "
            "reach); KERVAN_STARTUP_TIMEOUT_S sets the wait");
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
    MPI_Barrier(MPI_COMM_WORLD);  // every rank has started
  }
  g_active = true;
  // The launcher forwards this rank's stdout and stderr through pipes: when it dies, a write would
  // end the rank by SIGPIPE before it could save. Writes fail with EPIPE instead, and the parent
  // watch stops the rank properly.
  std::signal(SIGPIPE, SIG_IGN);
  parent_watch_ = std::thread([this, grace_s] { watch_parent(grace_s); });
}

MpiRuntime::~MpiRuntime() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  parent_watch_.join();
  if (std::uncaught_exceptions() > 0) return;  // the handler aborts the job (see header)
  MPI_Finalize();
  g_active = false;
}

void MpiRuntime::watch_parent(double grace_s) {
  const pid_t parent = getppid();
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) {
    if (getppid() == parent) continue;
    std::fprintf(stderr,
                 "kervan: rank %d: its launcher (pid %d) has ended; stopping (SIGTERM: training saves "
                 "a checkpoint at the next step boundary)\n",
                 rank_, static_cast<int>(parent));
    std::fflush(stderr);
    std::raise(SIGTERM);
    if (!wake_.wait_for(lock, std::chrono::duration<double>(grace_s), [this] { return stopping_; })) {
      std::fprintf(stderr, "kervan: error: rank %d: still running %.0f s after its launcher ended; exiting\n",
                   rank_, grace_s);
      std::fflush(stderr);
      std::_Exit(kExitEnvironment);
    }
    return;
  }
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

}  // namespace kervan
