// Simulated workers' calls through gRPC's asynchronous C++ client: a channel per worker, set up
// as kervan's CoordinatorClient sets up its own, and a completion queue per lane.
#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>

#include "coordinator/coordinator_client.h"
#include "core/xxh3_inline.h"
#include "core/error.h"
#include "launcher/coordinator_load_lane.h"
#include "proto/coordinator.grpc.pb.h"

namespace kervan::load {

namespace v1 = coordinator::v1;

namespace {

class GrpcLane;

// A call in flight; its tag on the lane's completion queue.
class Call {
 public:
  virtual ~Call() = default;
  virtual void proceed(bool ok) = 0;
};

class GrpcLane final : public Lane {
 public:
  GrpcLane(Sim& s, int index, int lanes) : Lane(s), stubs(static_cast<size_t>(s.opt.workers)) {
    for (int w = index; w < s.opt.workers; w += lanes) {
      // A distinct channel argument keeps gRPC from sharing one connection between workers.
      grpc::ChannelArguments args;
      args.SetInt("kervan.bench.worker", s.opt.first_worker + w);
      const std::shared_ptr<grpc::Channel> channel = coordinator_channel(s.opt.address, args);
      if (!channel->WaitForConnected(std::chrono::system_clock::now() + kCallDeadline))
        throw EnvironmentError("connect", "the coordinator at " + s.opt.address, "no connection within 30 s");
      stubs[static_cast<size_t>(w)] = v1::Coordinator::NewStub(channel);
    }
  }
  ~GrpcLane() override {
    cq.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq.Next(&tag, &ok)) {
    }  // nothing is left in flight: drains the queue's own shutdown
  }

  // For the calls.
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<v1::Coordinator::Stub>> stubs;  // per worker of this lane
  // Every fetched message of the lane is parsed into this one, whose pieces and their buffers
  // protobuf reuses, as a worker's CoordinatorClient::fetch parses into one per thread (gRPC
  // parses a message when its completion is taken, on this thread, which checks it at once).
  v1::TokenData message;
  using Lane::fetch_request;
  using Lane::heartbeat_request;
  using Lane::record;

 protected:
  void start_call(int w, bool fetch, Clock::time_point due_at) override;
  void wait(Clock::time_point until) override {
    // (gRPC takes deadlines on its own clocks: the wait until the next call, from now)
    const gpr_timespec deadline =
        until == Clock::time_point::max()
            ? gpr_inf_future(GPR_CLOCK_MONOTONIC)
            : gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                           gpr_time_from_nanos(
                               std::max<int64_t>(0, std::chrono::nanoseconds(until - Clock::now()).count()),
                               GPR_TIMESPAN));
    void* tag = nullptr;
    bool ok = false;
    if (cq.AsyncNext(&tag, &ok, deadline) == grpc::CompletionQueue::GOT_EVENT)
      static_cast<Call*>(tag)->proceed(ok);
  }
};

class FetchCall final : public Call {
 public:
  FetchCall(GrpcLane& lane, int worker, Clock::time_point due) : lane_(lane), worker_(worker), due_(due) {
    ctx_.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    const v1::FetchRequest& req = lane.fetch_request(worker);
    for (const v1::TokenRange& r : req.ranges()) left_ += r.length();
    rpc_ = lane.stubs[static_cast<size_t>(worker)]->PrepareAsyncFetchTokens(&ctx_, req, &lane.cq);
    rpc_->StartCall(this);
  }
  // Reads until every byte asked for has come (then the status follows, as it does for a
  // worker's CoordinatorClient::fetch) or the stream ends early, then asks for the status.
  void proceed(bool ok) override {
    switch (state_) {
      case State::kStarting:  // the request went out (or the call failed)
      case State::kReading:
        if (ok && state_ == State::kReading) check_pieces();
        if (ok && left_ > 0) {
          state_ = State::kReading;
          return rpc_->Read(&lane_.message, this);
        }
        state_ = State::kFinishing;
        return rpc_->Finish(&status_, this);
      case State::kFinishing:
        grpc::StatusCode code = status_.error_code();
        if (status_.ok() && (bad_pieces_ > 0 || left_ > 0)) code = grpc::StatusCode::DATA_LOSS;
        lane_.record(worker_, true, due_, code);
        delete this;
    }
  }

 private:
  // As a worker's CoordinatorClient::fetch does: every piece against its XXH3-64.
  void check_pieces() {
    for (const v1::TokenChunk& piece : lane_.message.chunks()) {
      if (XXH3_64bits(piece.data().data(), piece.data().size()) != piece.checksum()) bad_pieces_++;
      left_ -= std::min<uint64_t>(left_, piece.data().size());
    }
  }

  enum class State { kStarting, kReading, kFinishing };
  GrpcLane& lane_;
  int worker_;
  Clock::time_point due_;
  State state_ = State::kStarting;
  grpc::ClientContext ctx_;
  uint64_t left_ = 0;  // bytes asked for and not yet received
  int bad_pieces_ = 0;
  grpc::Status status_;
  decltype(std::declval<v1::Coordinator::Stub>().PrepareAsyncFetchTokens(nullptr, {}, nullptr)) rpc_;
};

class HeartbeatCall final : public Call {
 public:
  HeartbeatCall(GrpcLane& lane, int worker, Clock::time_point due) : lane_(lane), worker_(worker), due_(due) {
    ctx_.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    rpc_ = lane.stubs[static_cast<size_t>(worker)]->PrepareAsyncHeartbeat(
        &ctx_, lane.heartbeat_request(worker), &lane.cq);
    rpc_->StartCall();
    rpc_->Finish(&resp_, &status_, this);
  }
  void proceed(bool) override {
    lane_.record(worker_, false, due_, status_.error_code());
    delete this;
  }

 private:
  GrpcLane& lane_;
  int worker_;
  Clock::time_point due_;
  grpc::ClientContext ctx_;
  v1::HeartbeatResponse resp_;
  grpc::Status status_;
  decltype(std::declval<v1::Coordinator::Stub>().PrepareAsyncHeartbeat(nullptr, {}, nullptr)) rpc_;
};

void GrpcLane::start_call(int w, bool fetch, Clock::time_point due_at) {
  if (fetch)
    new FetchCall(*this, w, due_at);
  else
    new HeartbeatCall(*this, w, due_at);
}

}  // namespace

std::unique_ptr<Lane> make_grpc_lane(Sim& sim, int index, int lanes) {
  return std::make_unique<GrpcLane>(sim, index, lanes);
}

}  // namespace kervan::load
