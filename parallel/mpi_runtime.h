#pragma once
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "parallel/communicator.h"

namespace kervan {

// True when this process was started by mpirun or srun (Open MPI / PMIx environment), in which
// case MPI must be initialised; a plain `kervan train` runs alone without touching MPI.
bool launched_by_mpi();

// MPI for the lifetime of this object: MPI_Init_thread asking for MPI_THREAD_MULTIPLE (each
// MpiCommunicator runs its collectives on its own thread, and a timed-out wait talks to the
// other ranks from the caller's thread), MPI_Finalize at the end. When the object is destroyed
// by an exception, MPI is left running: MPI_Finalize could wait forever for ranks stuck in a
// collective, so the handler ends the job with abort_job instead.
//
// Every wait at start-up is bounded: MPI_Init_thread and a first barrier wait for all ranks, and
// a rank that never starts would leave the others there forever, so after
// KERVAN_STARTUP_TIMEOUT_S seconds (300) this rank says so and exits 4. A rank whose launcher
// (mpirun, its daemon or slurmstepd) dies is orphaned: it sends itself SIGTERM (training stops at
// the next step boundary and saves), and ends with exit 4 if it is still running
// KERVAN_ORPHAN_GRACE_S seconds (600) later.
class MpiRuntime {
 public:
  MpiRuntime();
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
  int world_rank() const { return rank_; }
  int world_size() const { return size_; }

  // The communicator of the ranks that pass the same `color`, ordered by world rank.
  // Collective over all ranks. `name` appears in error messages ("data-parallel", ...).
  std::unique_ptr<Communicator> group(int color, const std::string& name, double timeout_s) const;
  // The ranks that share this rank's node (its shared-memory domain), ordered by world rank.
  std::unique_ptr<Communicator> node_group(double timeout_s) const;

  // True between construction and destruction of the runtime (MPI usable).
  static bool active();

  // Ends every rank of the job with `exit_code` after printing `message` on this rank's stderr.
  [[noreturn]] static void abort_job(const std::string& message, int exit_code);

 private:
  void watch_parent(double grace_s);  // the orphan watch, on its own thread

  int rank_ = 0, size_ = 1;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread parent_watch_;
};

}  // namespace kervan
