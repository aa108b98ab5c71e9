#include "launcher/coordinator_load.h"

#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <queue>
#include <random>

#include "coordinator/coordinator_client.h"
#include "core/error.h"
#include "proto/coordinator.grpc.pb.h"
#include "proto/protocol_version.h"

namespace kervan {

namespace v1 = coordinator::v1;
using Clock = std::chrono::steady_clock;

namespace {

// The simulated workers and what they measured, all driven by one thread from one completion
// queue (gRPC's asynchronous client API): sending a call costs the simulation a few microseconds,
// so what the figures show is the coordinator's cost, not the simulation's. Latency runs from when
// a call was due (open loop) or sent (closed loop) to its answer, so a schedule that falls behind
// shows in the figures instead of hiding (no coordinated omission).
struct Sim {
  const LoadOptions& opt;
  v1::RequestHeader header;
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<v1::Coordinator::Stub>> stubs;
  std::vector<uint64_t> worker_ids;
  std::vector<std::mt19937_64> rngs;
  std::vector<uint64_t> shard_bytes;  // of the train split
  std::discrete_distribution<uint32_t> pick_shard;
  bool stopping = false;
  Clock::time_point window_end = Clock::time_point::max();  // completions after it are not counted in RPC/s
  int64_t in_flight = 0, errors = 0, in_window = 0;
  std::vector<double> heartbeat_ms, fetch_ms;
  std::map<std::string, int64_t> error_codes;
  std::vector<int64_t> calls;  // per worker, closed loop: which call comes next

  explicit Sim(const LoadOptions& o) : opt(o) {}
  void record(bool fetch, Clock::time_point due, const grpc::Status& status);
  void send(int w, bool fetch, Clock::time_point due);
  // After a call of worker w ends: its next call, in a closed loop (one heartbeat per ten fetches).
  void next(int w) {
    if (opt.closed_loop && !stopping) send(w, ++calls[w] % 11 != 10, Clock::now());
  }
  v1::FetchRequest fetch_request(int w);
};

// A worker's calls carry deadlines, as a training worker's do; this one ends the load run's
// drain at the latest.
constexpr auto kCallDeadline = std::chrono::seconds(60);

// A call in flight; the completion queue's tag. step() moves it on; false when it is over.
class SimCall {
 public:
  virtual ~SimCall() = default;
  virtual bool step(bool ok) = 0;
};

class FetchCall final : public SimCall {
 public:
  FetchCall(Sim& sim, int worker, Clock::time_point due) : sim_(sim), worker_(worker), due_(due) {
    ctx_.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    reader_ = sim.stubs[worker]->PrepareAsyncFetchTokens(&ctx_, sim.fetch_request(worker), &sim.cq);
    reader_->StartCall(this);
  }
  bool step(bool ok) override {
    if (finishing_) {
      sim_.record(true, due_, status_);
      sim_.next(worker_);
      return false;
    }
    if (ok) {
      reader_->Read(&chunk_, this);  // the call started, or a message arrived
    } else {
      finishing_ = true;  // the stream ended
      reader_->Finish(&status_, this);
    }
    return true;
  }

 private:
  Sim& sim_;
  int worker_;
  Clock::time_point due_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientAsyncReader<v1::TokenData>> reader_;
  v1::TokenData chunk_;
  grpc::Status status_;
  bool finishing_ = false;
};

class HeartbeatCall final : public SimCall {
 public:
  HeartbeatCall(Sim& sim, int worker, Clock::time_point due) : sim_(sim), worker_(worker), due_(due) {
    v1::HeartbeatRequest req;
    *req.mutable_header() = sim.header;
    req.set_worker_id(sim.worker_ids[worker]);
    req.set_step(1);
    req.set_consumed_samples(16);
    req.set_tokens_per_s(160000);
    ctx_.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    rpc_ = sim.stubs[worker]->PrepareAsyncHeartbeat(&ctx_, req, &sim.cq);
    rpc_->StartCall();
    rpc_->Finish(&resp_, &status_, this);
  }
  bool step(bool) override {
    sim_.record(false, due_, status_);
    sim_.next(worker_);
    return false;
  }

 private:
  Sim& sim_;
  int worker_;
  Clock::time_point due_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::HeartbeatResponse>> rpc_;
  v1::HeartbeatResponse resp_;
  grpc::Status status_;
};

void Sim::record(bool fetch, Clock::time_point due, const grpc::Status& status) {
  const Clock::time_point now = Clock::now();
  if (now <= window_end) in_window++;
  (fetch ? fetch_ms : heartbeat_ms).push_back(std::chrono::duration<double, std::milli>(now - due).count());
  if (!status.ok()) errors++, error_codes[status_code_name(status.error_code())]++;
  in_flight--;
}

v1::FetchRequest Sim::fetch_request(int w) {
  v1::FetchRequest req;
  *req.mutable_header() = header;
  req.set_corpus(0);
  req.set_split("train");
  for (int i = 0; i < opt.windows; ++i) {
    const uint32_t s = pick_shard(rngs[w]);
    const uint64_t span = shard_bytes[s] > opt.window_bytes ? shard_bytes[s] - opt.window_bytes : 0;
    v1::TokenRange* r = req.add_ranges();
    r->set_shard(s);
    r->set_offset(span ? (rngs[w]() % span) & ~uint64_t{1} : 0);
    r->set_length(std::min(opt.window_bytes, shard_bytes[s]));
  }
  return req;
}

void Sim::send(int w, bool fetch, Clock::time_point due) {
  in_flight++;
  if (fetch)
    new FetchCall(*this, w, due);
  else
    new HeartbeatCall(*this, w, due);
}

// Runs the completion queue until `until` (or until nothing is in flight, with `drain`).
void run_queue(Sim& sim, Clock::time_point until, bool drain) {
  void* tag = nullptr;
  bool ok = false;
  while (!(drain && sim.in_flight == 0)) {
    const auto got = sim.cq.AsyncNext(&tag, &ok, until);
    if (got != grpc::CompletionQueue::GOT_EVENT) return;  // the time is up
    auto* call = static_cast<SimCall*>(tag);
    if (!call->step(ok)) delete call;
  }
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

LoadResult run_coordinator_load(const LoadOptions& opt, const SharedSecret& secret,
                                const v1::ManifestResponse& manifest) {
  if (manifest.corpora_size() == 0 || manifest.corpora(0).splits_size() == 0)
    throw UserError("bench coordinator: the coordinator serves no corpus");
  Sim sim(opt);
  CoordinatorClient header_source({opt.address, "default", 10}, secret);
  sim.header = header_source.header();
  for (const v1::ShardInfo& s : manifest.corpora(0).splits(0).shards())
    sim.shard_bytes.push_back(s.tokens() * s.token_bytes());
  sim.pick_shard = std::discrete_distribution<uint32_t>(sim.shard_bytes.begin(), sim.shard_bytes.end());
  sim.calls.assign(opt.workers, 0);

  // Each worker its own connection (a distinct channel argument keeps gRPC from sharing one),
  // set up as a training worker's (coordinator_channel).
  for (int w = 0; w < opt.workers; ++w) {
    grpc::ChannelArguments args;
    args.SetInt("kervan.bench.worker", w);
    sim.stubs.push_back(v1::Coordinator::NewStub(coordinator_channel(opt.address, args)));
    sim.rngs.emplace_back(static_cast<uint64_t>(w) * 7919 + 1);
    v1::RegisterRequest reg;
    *reg.mutable_header() = sim.header;
    v1::WorkerIdentity* id = reg.mutable_worker();
    id->set_role(v1::WORKER_ROLE_TRAIN);
    id->set_host("sim");
    id->set_pid(static_cast<uint32_t>(w));
    id->set_rank(w);
    id->set_world_size(opt.workers);
    id->set_dp_rank(w);
    id->set_dp_size(opt.workers);
    id->set_tp_size(1);
    v1::RegisterResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    const grpc::Status s = sim.stubs.back()->Register(&ctx, reg, &resp);
    if (!s.ok()) throw EnvironmentError("Register", "the coordinator at " + opt.address, s.error_message());
    sim.worker_ids.push_back(resp.worker_id());
  }

  LoadResult out;
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.seconds));
  sim.window_end = end;
  if (opt.closed_loop) {
    for (int w = 0; w < opt.workers; ++w) sim.send(w, true, Clock::now());
    run_queue(sim, end, false);
  } else {
    // Every call at its time; each worker's phase is spread over its periods.
    using Event = std::tuple<Clock::time_point, int, bool>;  // due, worker, fetch
    std::priority_queue<Event, std::vector<Event>, std::greater<>> due;
    const auto ms = [](double v) {
      return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(v));
    };
    std::mt19937_64 phase(1);
    for (int w = 0; w < opt.workers; ++w) {
      due.emplace(start + ms(opt.heartbeat_ms * (phase() % 1000) / 1000.0), w, false);
      due.emplace(start + ms(opt.step_ms * (phase() % 1000) / 1000.0), w, true);
    }
    out.offered_per_s = opt.workers * (1000.0 / opt.heartbeat_ms + 1000.0 / opt.step_ms);
    while (!due.empty()) {
      auto [when, w, fetch] = due.top();
      if (when >= end) break;
      run_queue(sim, when, false);  // answers until the next call is due (those ready, when it is late)
      due.pop();
      sim.send(w, fetch, when);
      due.emplace(when + ms(fetch ? opt.step_ms : opt.heartbeat_ms), w, fetch);
    }
  }
  sim.stopping = true;
  out.seconds = std::chrono::duration<double>(end - start).count();
  run_queue(sim, Clock::now() + kCallDeadline + std::chrono::seconds(5), true);
  out.heartbeats = static_cast<int64_t>(sim.heartbeat_ms.size());
  out.fetches = static_cast<int64_t>(sim.fetch_ms.size());
  out.errors = sim.errors;
  out.error_codes = sim.error_codes;
  out.answered_per_s = static_cast<double>(sim.in_window) / out.seconds;
  std::vector<double> all = sim.heartbeat_ms;
  all.insert(all.end(), sim.fetch_ms.begin(), sim.fetch_ms.end());
  out.p50_ms = percentile(all, 0.50);
  out.p99_ms = percentile(all, 0.99);
  out.max_ms = all.empty() ? 0 : *std::max_element(all.begin(), all.end());
  out.heartbeat_p99_ms = percentile(sim.heartbeat_ms, 0.99);
  out.fetch_p99_ms = percentile(sim.fetch_ms, 0.99);
  sim.cq.Shutdown();  // every call has ended by now (their deadline)
  void* tag = nullptr;
  bool ok = false;
  while (sim.cq.Next(&tag, &ok)) {
    auto* call = static_cast<SimCall*>(tag);
    if (!call->step(ok)) delete call;
  }
  return out;
}

}  // namespace kervan
