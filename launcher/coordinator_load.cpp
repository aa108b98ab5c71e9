#include "launcher/coordinator_load.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <random>
#include <thread>

#include "coordinator/coordinator_client.h"
#include "core/error.h"
#include "proto/coordinator.grpc.pb.h"
#include "proto/protocol_version.h"

namespace kervan {

namespace v1 = coordinator::v1;
using Clock = std::chrono::steady_clock;

namespace {

// The simulated workers and what they measured. Latency runs from when a call was due (open
// loop) or sent (closed loop) to its answer, so a schedule that falls behind shows in the
// figures instead of hiding (no coordinated omission).
struct Sim {
  const LoadOptions& opt;
  v1::RequestHeader header;
  std::vector<std::unique_ptr<v1::Coordinator::Stub>> stubs;
  std::vector<uint64_t> worker_ids;
  std::vector<std::mt19937_64> rngs;
  std::vector<uint64_t> shard_bytes;  // of the train split
  std::discrete_distribution<uint32_t> pick_shard;
  std::atomic<bool> stopping = false;
  Clock::time_point window_end = Clock::time_point::max();  // completions after it are not counted in RPC/s
  std::atomic<int64_t> in_flight = 0, errors = 0, in_window = 0;
  std::mutex mu;
  std::condition_variable drained;
  std::vector<double> heartbeat_ms, fetch_ms;
  std::map<std::string, int64_t> error_codes;
  std::vector<int64_t> calls;  // per worker, closed loop: which call comes next

  explicit Sim(const LoadOptions& o) : opt(o) {}
  void record(bool fetch, Clock::time_point due, const grpc::Status& status);
  void send(int w, bool fetch, Clock::time_point due);
  v1::FetchRequest fetch_request(int w);
};

class FetchCall final : public grpc::ClientReadReactor<v1::TokenData> {
 public:
  FetchCall(Sim& sim, int worker, Clock::time_point due) : sim_(sim), worker_(worker), due_(due) {
    req_ = sim.fetch_request(worker);
    sim.stubs[worker]->async()->FetchTokens(&ctx_, &req_, this);
    StartRead(&chunk_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (ok) StartRead(&chunk_);
  }
  void OnDone(const grpc::Status& s) override {
    sim_.record(true, due_, s);
    if (sim_.opt.closed_loop && !sim_.stopping)
      sim_.send(worker_, ++sim_.calls[worker_] % 11 != 10, Clock::now());
    delete this;
  }

 private:
  Sim& sim_;
  int worker_;
  Clock::time_point due_;
  grpc::ClientContext ctx_;
  v1::FetchRequest req_;
  v1::TokenData chunk_;
};

struct HeartbeatCall {
  grpc::ClientContext ctx;
  v1::HeartbeatRequest req;
  v1::HeartbeatResponse resp;
};

void Sim::record(bool fetch, Clock::time_point due, const grpc::Status& status) {
  const Clock::time_point now = Clock::now();
  const double ms = std::chrono::duration<double, std::milli>(now - due).count();
  if (now <= window_end) in_window++;
  {
    std::lock_guard lock(mu);
    (fetch ? fetch_ms : heartbeat_ms).push_back(ms);
    if (!status.ok()) errors++, error_codes[status_code_name(status.error_code())]++;
  }
  if (--in_flight == 0) drained.notify_all();
}

v1::FetchRequest Sim::fetch_request(int w) {
  v1::FetchRequest req;
  *req.mutable_header() = header;
  req.set_corpus(0);
  req.set_split("train");
  std::lock_guard lock(mu);  // the rng and the distribution
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
  if (fetch) {
    new FetchCall(*this, w, due);
    return;
  }
  auto* call = new HeartbeatCall;
  *call->req.mutable_header() = header;
  call->req.set_worker_id(worker_ids[w]);
  call->req.set_step(1);
  call->req.set_consumed_samples(16);
  call->req.set_tokens_per_s(160000);
  stubs[w]->async()->Heartbeat(&call->ctx, &call->req, &call->resp, [this, w, call, due](grpc::Status s) {
    record(false, due, s);
    if (opt.closed_loop && !stopping) send(w, ++calls[w] % 11 != 10, Clock::now());
    delete call;
  });
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

  // Each worker its own connection (a distinct channel argument keeps gRPC from sharing one).
  for (int w = 0; w < opt.workers; ++w) {
    grpc::ChannelArguments args;
    args.SetInt("kervan.bench.worker", w);
    sim.stubs.push_back(v1::Coordinator::NewStub(
        grpc::CreateCustomChannel(opt.address, grpc::InsecureChannelCredentials(), args)));
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
    std::this_thread::sleep_until(end);
  } else {
    // One thread sends every call at its time; each worker's phase is spread over its periods.
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
      due.pop();
      if (when > Clock::now()) std::this_thread::sleep_until(when);
      sim.send(w, fetch, when);
      due.emplace(when + ms(fetch ? opt.step_ms : opt.heartbeat_ms), w, fetch);
    }
  }
  sim.stopping = true;
  out.seconds = std::chrono::duration<double>(end - start).count();
  {
    std::unique_lock lock(sim.mu);
    sim.drained.wait_for(lock, std::chrono::seconds(60), [&] { return sim.in_flight == 0; });
  }
  std::lock_guard lock(sim.mu);
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
  return out;
}

}  // namespace kervan
