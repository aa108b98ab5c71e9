#pragma once
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "coordinator/corpus_catalog.h"
#include "coordinator/job_state.h"
#include "coordinator/journal.h"
#include "coordinator/rpc_calls.h"
#include "coordinator/shared_secret.h"
#include "proto/coordinator.grpc.pb.h"

namespace kervan {

namespace coordinator_detail {
namespace v1 = coordinator::v1;
// Every method raw and asynchronous: the service parses requests itself, so a message that does
// not parse is INVALID_ARGUMENT (gRPC's own parsing would answer INTERNAL), and the server's
// threads drive every call (coordinator/rpc_calls.h).
using RawService = v1::Coordinator::WithRawMethod_Register<v1::Coordinator::WithRawMethod_GetManifest<
    v1::Coordinator::WithRawMethod_FetchTokens<v1::Coordinator::WithRawMethod_Heartbeat<
        v1::Coordinator::WithRawMethod_CommitPosition<v1::Coordinator::WithRawMethod_Stop<
            v1::Coordinator::WithRawMethod_BeginPrepare<v1::Coordinator::WithRawMethod_LeaseUnit<
                v1::Coordinator::WithRawMethod_RenewLease<v1::Coordinator::WithRawMethod_CompleteUnit<
                    v1::Coordinator::WithRawMethod_RendezvousPut<v1::Coordinator::WithRawMethod_RendezvousGet<
                        v1::Coordinator::WithRawMethod_Status<v1::Coordinator::Service>>>>>>>>>>>>>;
}  // namespace coordinator_detail

// The Coordinator service (proto/coordinator.proto): checks every request's token, protocol
// version and job, then answers from the corpus catalog (immutable, read without a lock) or the
// job state (one mutex, held only for in-memory work; journal writes and token reads happen
// outside it).
class CoordinatorService final : public coordinator_detail::RawService {
 public:
  CoordinatorService(const CorpusCatalog& catalog, SharedSecret secret, std::string job_id, JobState& state,
                     std::mutex& state_mutex, Journal& journal);
  ~CoordinatorService() override;

  // Accepts calls of every method on `cq` (once per completion queue, after the server started).
  void serve(grpc::ServerCompletionQueue* cq);

  // Called now and then (the server's monitor thread): answers rendezvous waits that ran out.
  void expire_waits(std::chrono::steady_clock::time_point now);
  // Answers every waiting call with UNAVAILABLE (before the server shuts down).
  void cancel_waits();
  // Applies `record` to the state and journals it; `reply` runs once it is durable. Call with
  // the state mutex held (the journal's order is the order of state changes).
  void commit_locked(const JobState::Record& record, std::function<void()> reply);
  // Token, then protocol major version, then job id.
  grpc::Status check_header(const coordinator::v1::RequestHeader& header) const;

 private:
  template <class Resp>
  using ReplyPtr = std::shared_ptr<Reply<Resp>>;
  void register_worker(const coordinator::v1::RegisterRequest& req,
                       ReplyPtr<coordinator::v1::RegisterResponse> reply);
  void heartbeat(const coordinator::v1::HeartbeatRequest& req,
                 ReplyPtr<coordinator::v1::HeartbeatResponse> reply);
  void commit_position(const coordinator::v1::CommitPositionRequest& req,
                       ReplyPtr<coordinator::v1::CommitPositionResponse> reply);
  void stop(const coordinator::v1::StopRequest& req, ReplyPtr<coordinator::v1::StopResponse> reply);
  void begin_prepare(const coordinator::v1::BeginPrepareRequest& req,
                     ReplyPtr<coordinator::v1::BeginPrepareResponse> reply);
  void lease_unit(const coordinator::v1::LeaseRequest& req, ReplyPtr<coordinator::v1::LeaseResponse> reply);
  void renew_lease(const coordinator::v1::RenewLeaseRequest& req,
                   ReplyPtr<coordinator::v1::RenewLeaseResponse> reply);
  void complete_unit(const coordinator::v1::CompleteUnitRequest& req,
                     ReplyPtr<coordinator::v1::CompleteUnitResponse> reply);
  void rendezvous_put(const coordinator::v1::RendezvousPutRequest& req,
                      ReplyPtr<coordinator::v1::RendezvousPutResponse> reply);
  void rendezvous_get(const coordinator::v1::RendezvousGetRequest& req,
                      ReplyPtr<coordinator::v1::RendezvousGetResponse> reply);
  void status(ReplyPtr<coordinator::v1::StatusResponse> reply);

  struct Waiter;
  void wake_waiters_locked(const std::string& key, const std::string& value);

  const CorpusCatalog& catalog_;
  const SharedSecret secret_;
  const std::string job_id_;
  JobState& state_;
  std::mutex& mu_;
  Journal& journal_;
  std::list<std::shared_ptr<Waiter>> waiters_;  // guarded by mu_
};

int64_t steady_now_ms();

}  // namespace kervan
