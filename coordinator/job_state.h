#pragma once
#include <grpcpp/support/status.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proto/coordinator.pb.h"
#include "proto/journal.pb.h"

namespace kervan {

// The coordinator's view of one job: its workers and their liveness, the data position, the
// prepare plan and its work-unit leases, rendezvous values and a stop request. No gRPC calls and
// no I/O here; the caller holds one lock around every call.
//
// Durable state changes only through apply(record), which a live request and a journal replay
// both go through, so a restarted coordinator reaches exactly the state its journal describes.
// A request that changes durable state is answered in two steps: plan_*() checks it and returns
// the record (or a refusal), the caller applies and journals the record, and replies when the
// journal has it on disk. Heartbeats, lease renewals and liveness are not journaled: they are
// re-established within a heartbeat interval after a restart.
//
// Times are milliseconds of a steady clock, passed in (tests drive them).
class JobState {
 public:
  using Record = coordinator::v1::JournalRecord;
  struct Timing {
    uint32_t heartbeat_interval_ms = 1000;
    uint32_t dead_after_ms = 10000;  // a worker silent this long is reported dead
    uint32_t lease_ms = 30000;       // a work-unit lease not renewed this long may go to another worker
  };

  JobState(std::string job_id, Timing timing, uint64_t train_tokens, int64_t now_ms);

  // Replay and live requests both: the one place durable state changes.
  void apply(const Record& record, int64_t now_ms);
  // After replaying a journal: leases get a fresh deadline (their holders could not renew while
  // the coordinator was gone), workers are marked unknown until they are heard from.
  void restarted(int64_t now_ms);

  grpc::Status plan_register(const coordinator::v1::RegisterRequest& req, Record* record);
  void fill_register_response(uint64_t worker_id, coordinator::v1::RegisterResponse* resp) const;
  grpc::Status heartbeat(const coordinator::v1::HeartbeatRequest& req, int64_t now_ms,
                         coordinator::v1::HeartbeatResponse* resp);
  grpc::Status plan_commit(const coordinator::v1::CommitPositionRequest& req, Record* record);
  grpc::Status plan_stop(const std::string& reason, Record* record);
  // No record when the same plan has already begun.
  grpc::Status plan_begin_prepare(const coordinator::v1::BeginPrepareRequest& req,
                                  std::optional<Record>* record);
  // A record only when a lease is granted.
  grpc::Status plan_lease(const coordinator::v1::LeaseRequest& req, int64_t now_ms,
                          std::optional<Record>* record, coordinator::v1::LeaseResponse* resp);
  grpc::Status renew_lease(const coordinator::v1::RenewLeaseRequest& req, int64_t now_ms,
                           coordinator::v1::RenewLeaseResponse* resp);
  // No record when the unit is already complete under this lease (a retried completion).
  grpc::Status plan_complete(const coordinator::v1::CompleteUnitRequest& req, std::optional<Record>* record);
  // No record when the key is already set (resp then holds the value that stands).
  std::optional<Record> plan_rendezvous_put(const coordinator::v1::RendezvousPutRequest& req,
                                            coordinator::v1::RendezvousPutResponse* resp) const;
  const std::string* rendezvous_value(const std::string& key) const;
  void status(int64_t now_ms, coordinator::v1::StatusResponse* resp) const;

  // Workers that went silent past dead_after_ms since the last call (each reported once).
  struct DeadWorker {
    std::string description;  // "worker W (rank R, host H, pid P) has sent nothing for S s"
    bool trains;              // a training worker (the job cannot go on without it)
  };
  std::vector<DeadWorker> newly_dead(int64_t now_ms);
  // A stop asks the workers registered when it was requested (the job as it ran then); workers
  // that register afterwards (the job restarted by its scheduler) are not asked again.
  bool stop_requested() const { return stop_reason_.has_value() && next_worker_id_ <= stop_before_worker_; }
  uint32_t lease_ms() const { return timing_.lease_ms; }
  uint32_t dead_after_ms() const { return timing_.dead_after_ms; }

 private:
  struct Worker {
    coordinator::v1::WorkerIdentity identity;
    coordinator::v1::RunShape run;
    int64_t last_heard_ms = 0;
    bool heard = false;  // since this coordinator started
    bool finished = false;
    bool reported_dead = false;
    int64_t step = -1, consumed_samples = 0;
    double tokens_per_s = 0;
  };
  struct Unit {
    uint64_t lease_id = 0;  // 0: never leased
    uint64_t worker_id = 0;
    int64_t expires_ms = 0;
    bool done = false;
  };
  struct Prepare {
    uint64_t plan_fingerprint = 0;
    std::vector<Unit> units;  // unit_count work units, then the manifest step
  };

  grpc::Status known_worker(uint64_t worker_id) const;
  void heard_from(uint64_t worker_id, int64_t now_ms);
  // The unit that lease_id currently holds, or a FAILED_PRECONDITION naming what happened to it.
  grpc::Status held_unit(uint64_t lease_id, uint64_t worker_id, uint32_t* unit) const;
  std::string describe_worker(uint64_t id) const;

  std::string job_id_;
  Timing timing_;
  uint64_t train_tokens_;
  int64_t started_ms_;
  std::map<uint64_t, Worker> workers_;
  uint64_t next_worker_id_ = 1;
  std::optional<coordinator::v1::DataPosition> committed_;
  std::optional<Prepare> prepare_;
  uint64_t next_lease_id_ = 1;
  std::map<uint64_t, uint32_t> lease_units_;  // every lease ever granted -> its unit
  std::map<std::string, std::string> rendezvous_;
  std::optional<std::string> stop_reason_;
  uint64_t stop_before_worker_ = 0;  // the stop applies to worker ids below this
};

}  // namespace kervan
