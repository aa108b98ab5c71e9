#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/coordinator_server.h"
#include "coordinator/remote_corpora.h"
#include "coordinator/worker_session.h"
#include "launcher/run_config.h"
#include "launcher/training_data.h"
#include "parallel/communicator.h"
#include "parallel/process_grid.h"

namespace kervan {

class Backend;

// Training through a coordinator: data.coordinator = "HOST:PORT", or parallel.coordinator =
// "embedded" (rank 0 runs one on a background thread, serving data.path, so that one mpirun is
// still all a user types). Every rank registers with it (WorkerSession: heartbeats, progress,
// stop requests) and reads its batches through a token cache of its own,
// data.cache_dir/<job>/rank-<rank>. The sample order stays the loader's: the losses equal those
// of reading the folders.
class CoordinatedData {
 public:
  // Collective over `world` (rank 0 shares the embedded coordinator's address and token);
  // `single_node`: every rank runs on rank 0's machine (the embedded coordinator then listens on
  // loopback only).
  CoordinatedData(const RunConfig& cfg, const ProcessGrid& grid, bool single_node, Communicator& world,
                  Backend& be);

  // data.path, or every corpus the coordinator serves when data.path is empty.
  const std::vector<std::string>& paths() const { return paths_; }
  OpenSource opener();
  WorkerSession& session() { return *session_; }
  // Rank 0, after the checkpoint resume: the run starts at the data position of the checkpoint
  // it resumed from (`resumed_from`, "" when it starts fresh), whatever the coordinator last
  // committed for this job (its journal may have moved on: a newer checkpoint that was lost or
  // damaged, a run that went on without saving). Says how the two relate and, where they differ,
  // commits the run's own position, so the coordinator's journal holds the state of the checkpoint
  // the job continues from.
  void align_committed(const std::string& resumed_from, int64_t step, int64_t consumed_samples);
  // Per data source, the served corpus it reads ("NAME FINGERPRINT"), for the checkpoint: a
  // resume through a coordinator that serves other data under the same name is then noticed.
  std::vector<std::string> served_corpora() const;

 private:
  void start_embedded(const RunConfig& cfg, bool single_node, Communicator& world, Backend& be);

  std::unique_ptr<CoordinatorServer> embedded_;  // rank 0 of an embedded job
  std::string address_;
  std::string job_id_;
  std::shared_ptr<CoordinatorClient> client_;
  std::unique_ptr<RemoteCorpora> corpora_;
  std::unique_ptr<WorkerSession> session_;
  std::vector<std::string> paths_;
  std::map<std::string, std::string> served_as_;  // data.path entry -> the corpus name it is served as
  int64_t model_vocab_ = 0;
};

}  // namespace kervan
