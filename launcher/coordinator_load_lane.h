#pragma once
// The schedule that `kervan bench coordinator`'s simulated workers share, apart from how their
// calls travel: a Lane is a thread that sends its workers' calls when they fall due and takes
// their answers; coordinator_load_grpc.cpp sends them through gRPC's C++ client, as kervan's own
// workers do, coordinator_load_h2.cpp as the same HTTP/2 requests from a lean client (nghttp2).
#include <grpcpp/support/status.h>

#include <array>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "launcher/coordinator_load.h"
#include "proto/coordinator.pb.h"

namespace kervan {

namespace load {

using Clock = std::chrono::steady_clock;

constexpr auto kCallDeadline = std::chrono::seconds(30);  // as a worker's CoordinatorClient sets

// What the lanes of one process share.
struct Sim {
  const LoadOptions& opt;
  coordinator::v1::RequestHeader header;
  std::vector<uint64_t> worker_ids;
  std::vector<std::mt19937_64> rngs;
  std::vector<uint64_t> shard_bytes;  // of the train split
  // The timed window: calls due before `timed` warm up (left out of the figures), completions
  // after `end` are not counted in RPC/s.
  Clock::time_point timed, end;
  std::vector<int64_t> calls;  // per worker, closed loop: which call comes next
  // Per worker and kind (heartbeat 0, fetch 1): a call in flight, and the due times of those
  // waiting for it.
  std::vector<std::array<bool, 2>> busy;
  std::vector<std::array<std::deque<Clock::time_point>, 2>> waiting;

  explicit Sim(const LoadOptions& o) : opt(o) {}
};

// The simulated workers are split into lanes (worker w in lane w % lanes), each a thread that
// sends its workers' calls at their times and takes their answers itself, so a call is sent and
// answered on one thread without handing it to another.
// Like a real worker (its token cache fetches on one thread, its session heartbeats on another,
// each call waiting for the last), a simulated worker has at most one fetch and one heartbeat
// in flight: a call that falls due while the last of its kind is unanswered waits for it.
// Latency runs from when a call was due (open loop) or sent (closed loop) to its answer, so a
// schedule that falls behind shows in the figures instead of hiding (no coordinated omission).
class Lane {
 public:
  explicit Lane(Sim& s);
  virtual ~Lane() = default;
  void run();

  using Event = std::tuple<Clock::time_point, int, bool>;  // due, worker, fetch
  std::priority_queue<Event, std::vector<Event>, std::greater<>> due;
  int64_t in_window = 0, errors = 0;
  std::vector<double> heartbeat_ms, fetch_ms, warmup_ms;
  std::map<std::string, int64_t> error_codes;

 protected:
  // Sends worker w's call (a fetch of fetch_request(w), or a heartbeat_request(w)); when it is
  // answered, the transport calls record() on this thread.
  virtual void start_call(int w, bool fetch, Clock::time_point due_at) = 0;
  // Takes answers until `until`, or until one comes when `until` is max().
  virtual void wait(Clock::time_point until) = 0;

  void record(int w, bool fetch, Clock::time_point due_at, grpc::StatusCode code);
  // Worker w's next batch: `windows` windows at random places, in a request reused by the lane.
  const coordinator::v1::FetchRequest& fetch_request(int w);
  const coordinator::v1::HeartbeatRequest& heartbeat_request(int w);

  Sim& sim;

 private:
  void send(int w, bool fetch, Clock::time_point due_at);

  int64_t in_flight_ = 0;
  std::discrete_distribution<uint32_t> pick_shard_;  // weighted by size
  coordinator::v1::FetchRequest fetch_;              // (header set once)
  coordinator::v1::HeartbeatRequest heartbeat_;
};

// The transports' lanes; each connects its workers (w % lanes == index) before it returns.
std::unique_ptr<Lane> make_grpc_lane(Sim& sim, int index, int lanes);
std::unique_ptr<Lane> make_h2_lane(Sim& sim, int index, int lanes);

}  // namespace load

}  // namespace kervan
