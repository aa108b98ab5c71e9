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
#include "coordinator/shared_secret.h"
#include "proto/coordinator.grpc.pb.h"

namespace kervan {

namespace coordinator_detail {
namespace v1 = coordinator::v1;
// Every method as a raw callback handler: the service parses requests itself, so a message that
// does not parse is INVALID_ARGUMENT (gRPC's own parsing would answer INTERNAL), and no handler
// blocks one of gRPC's threads (replies that wait for the journal are finished from its thread).
using RawService =
    v1::Coordinator::WithRawCallbackMethod_Register<v1::Coordinator::WithRawCallbackMethod_GetManifest<
        v1::Coordinator::WithRawCallbackMethod_FetchTokens<v1::Coordinator::WithRawCallbackMethod_Heartbeat<
            v1::Coordinator::WithRawCallbackMethod_CommitPosition<v1::Coordinator::WithRawCallbackMethod_Stop<
                v1::Coordinator::WithRawCallbackMethod_BeginPrepare<
                    v1::Coordinator::WithRawCallbackMethod_LeaseUnit<
                        v1::Coordinator::WithRawCallbackMethod_RenewLease<
                            v1::Coordinator::WithRawCallbackMethod_CompleteUnit<
                                v1::Coordinator::WithRawCallbackMethod_RendezvousPut<
                                    v1::Coordinator::WithRawCallbackMethod_RendezvousGet<
                                        v1::Coordinator::WithRawCallbackMethod_Status<
                                            v1::Coordinator::Service>>>>>>>>>>>>>;
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

  using ByteBuffer = grpc::ByteBuffer;
  using Context = grpc::CallbackServerContext;
  grpc::ServerUnaryReactor* Register(Context*, const ByteBuffer*, ByteBuffer*) override;
  grpc::ServerUnaryReactor* GetManifest(Context*, const ByteBuffer*, ByteBuffer*) override;
  grpc::ServerWriteReactor<ByteBuffer>* FetchTokens(Context*, const ByteBuffer*) override;
  grpc::ServerUnaryReactor* Heartbeat(Context*, const ByteBuffer*, ByteBuffer*) override;
  grpc::ServerUnaryReactor* CommitPosition(Context*, const ByteBuffer*, ByteBuffer*) override;
  grpc::ServerUnaryReactor* Stop(Context*, const ByteBuffer*, ByteBuffer*) override;
  grpc::ServerUnaryReactor* BeginPrepare(Context*, const ByteBuffer*, ByteBuffer*) override;
  grpc::ServerUnaryReactor* LeaseUnit(Context*, const ByteBuffer*, ByteBuffer*) override;
  grpc::ServerUnaryReactor* RenewLease(Context*, const ByteBuffer*, ByteBuffer*) override;
  grpc::ServerUnaryReactor* CompleteUnit(Context*, const ByteBuffer*, ByteBuffer*) override;
  grpc::ServerUnaryReactor* RendezvousPut(Context*, const ByteBuffer*, ByteBuffer*) override;
  grpc::ServerUnaryReactor* RendezvousGet(Context*, const ByteBuffer*, ByteBuffer*) override;
  grpc::ServerUnaryReactor* Status(Context*, const ByteBuffer*, ByteBuffer*) override;

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
