#include "launcher/coordinator_load.h"

#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <thread>

#include "coordinator/coordinator_client.h"
#include "coordinator/xxh3_inline.h"
#include "core/error.h"
#include "proto/coordinator.grpc.pb.h"
#include "proto/protocol_version.h"

namespace kervan {

namespace v1 = coordinator::v1;
using Clock = std::chrono::steady_clock;

namespace {

struct Sim;

constexpr auto kCallDeadline = std::chrono::seconds(30);  // as a worker's CoordinatorClient sets

// A call in flight; its tag on a completion queue.
class Call {
 public:
  virtual ~Call() = default;
  virtual void proceed(bool ok) = 0;
};

// The simulated workers are split into lanes (worker w in lane w % lanes), each a thread that
// sends its workers' calls at their times and takes their completions from a completion queue
// of its own, so a call is sent and answered on one thread without handing it to another.
// Like a real worker (its token cache fetches on one thread, its session heartbeats on another,
// each call waiting for the last), a simulated worker has at most one fetch and one heartbeat
// in flight: a call that falls due while the last of its kind is unanswered waits for it.
// Latency runs from when a call was due (open loop) or sent (closed loop) to its answer, so a
// schedule that falls behind shows in the figures instead of hiding (no coordinated omission).
struct Lane {
  Sim& sim;
  grpc::CompletionQueue cq;
  int64_t in_flight = 0, in_window = 0, errors = 0;
  std::vector<double> heartbeat_ms, fetch_ms;
  std::map<std::string, int64_t> error_codes;
  using Event = std::tuple<Clock::time_point, int, bool>;  // due, worker, fetch
  std::priority_queue<Event, std::vector<Event>, std::greater<>> due;
  std::discrete_distribution<uint32_t> pick_shard;  // weighted by size
  // Every fetched message of the lane is parsed into this one, whose pieces and their buffers
  // protobuf reuses, as a worker's CoordinatorClient::fetch parses into one per thread (gRPC
  // parses a message when its completion is taken, on this thread, which checks it at once).
  v1::TokenData message;
  // The lane's requests are built in these (gRPC serializes a request when its call is set up),
  // their header set once.
  v1::FetchRequest fetch;
  v1::HeartbeatRequest heartbeat;

  explicit Lane(Sim& s);
  void run();
  void send(int w, bool fetch, Clock::time_point due_at);
  void record(int w, bool fetch, Clock::time_point due_at, const grpc::Status& status);
  // Fills `fetch` with worker w's next batch: `windows` windows at random places.
  const v1::FetchRequest& fetch_request(int w);
};

struct Sim {
  const LoadOptions& opt;
  v1::RequestHeader header;
  std::vector<std::unique_ptr<v1::Coordinator::Stub>> stubs;
  std::vector<uint64_t> worker_ids;
  std::vector<std::mt19937_64> rngs;
  std::vector<uint64_t> shard_bytes;  // of the train split
  Clock::time_point end;              // of the timed window; completions after it are not counted in RPC/s
  std::vector<int64_t> calls;         // per worker, closed loop: which call comes next
  // Per worker and kind (heartbeat 0, fetch 1): a call in flight, and the due times of those
  // waiting for it.
  std::vector<std::array<bool, 2>> busy;
  std::vector<std::array<std::deque<Clock::time_point>, 2>> waiting;

  explicit Sim(const LoadOptions& o) : opt(o) {}
};

Lane::Lane(Sim& s) : sim(s), pick_shard(s.shard_bytes.begin(), s.shard_bytes.end()) {
  *fetch.mutable_header() = sim.header;
  fetch.set_corpus(0);
  fetch.set_split("train");
  *heartbeat.mutable_header() = sim.header;
}

class FetchCall final : public Call {
 public:
  FetchCall(Lane& lane, int worker, Clock::time_point due) : lane_(lane), worker_(worker), due_(due) {
    ctx_.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    const v1::FetchRequest& req = lane.fetch_request(worker);
    for (const v1::TokenRange& r : req.ranges()) left_ += r.length();
    rpc_ = lane.sim.stubs[worker]->PrepareAsyncFetchTokens(&ctx_, req, &lane.cq);
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
        if (status_.ok() && bad_pieces_ > 0)
          status_ = grpc::Status(grpc::StatusCode::DATA_LOSS, "a piece failed its checksum");
        else if (status_.ok() && left_ > 0)
          status_ = grpc::Status(grpc::StatusCode::DATA_LOSS, "the stream ended early");
        lane_.record(worker_, true, due_, status_);
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
  Lane& lane_;
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
  HeartbeatCall(Lane& lane, int worker, Clock::time_point due) : lane_(lane), worker_(worker), due_(due) {
    ctx_.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    v1::HeartbeatRequest& req = lane.heartbeat;
    req.set_worker_id(lane.sim.worker_ids[worker]);
    req.set_step(1);
    req.set_consumed_samples(16);
    req.set_tokens_per_s(160000);
    rpc_ = lane.sim.stubs[worker]->PrepareAsyncHeartbeat(&ctx_, req, &lane.cq);
    rpc_->StartCall();
    rpc_->Finish(&resp_, &status_, this);
  }
  void proceed(bool) override {
    lane_.record(worker_, false, due_, status_);
    delete this;
  }

 private:
  Lane& lane_;
  int worker_;
  Clock::time_point due_;
  grpc::ClientContext ctx_;
  v1::HeartbeatResponse resp_;
  grpc::Status status_;
  decltype(std::declval<v1::Coordinator::Stub>().PrepareAsyncHeartbeat(nullptr, {}, nullptr)) rpc_;
};

void Lane::send(int w, bool fetch, Clock::time_point due_at) {
  if (sim.busy[w][fetch]) return sim.waiting[w][fetch].push_back(due_at);
  sim.busy[w][fetch] = true;
  in_flight++;
  if (fetch)
    new FetchCall(*this, w, due_at);
  else
    new HeartbeatCall(*this, w, due_at);
}

void Lane::record(int w, bool fetch, Clock::time_point due_at, const grpc::Status& status) {
  const Clock::time_point now = Clock::now();
  (fetch ? fetch_ms : heartbeat_ms)
      .push_back(std::chrono::duration<double, std::milli>(now - due_at).count());
  if (now <= sim.end) in_window++;
  if (!status.ok()) errors++, error_codes[status_code_name(status.error_code())]++;
  in_flight--;
  sim.busy[w][fetch] = false;
  if (std::deque<Clock::time_point>& next = sim.waiting[w][fetch]; !next.empty()) {
    const Clock::time_point was_due = next.front();
    next.pop_front();
    send(w, fetch, was_due);
  }
  if (sim.opt.closed_loop && now < sim.end) send(w, sim.opt.fetch && ++sim.calls[w] % 11 != 10, now);
}

// Sends what is due and takes completions until the next call is due; after the timed window,
// until every call of the lane is answered (each has a deadline, as a real worker's calls do).
void Lane::run() {
  const auto ms = [](double v) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(v));
  };
  for (;;) {
    const Clock::time_point now = Clock::now();
    while (!due.empty() && std::get<0>(due.top()) <= now && std::get<0>(due.top()) < sim.end) {
      auto [when, w, fetch] = due.top();
      due.pop();
      send(w, fetch, when);
      if (!sim.opt.closed_loop)
        due.emplace(when + ms(fetch ? sim.opt.step_ms : sim.opt.heartbeat_ms), w, fetch);
    }
    const bool more = !due.empty() && std::get<0>(due.top()) < sim.end;
    if (!more && in_flight == 0) return;
    // (gRPC takes deadlines on its own clocks: the wait until the next call, from now)
    const gpr_timespec until =
        more ? gpr_time_add(
                   gpr_now(GPR_CLOCK_MONOTONIC),
                   gpr_time_from_nanos(
                       std::max<int64_t>(0, std::chrono::nanoseconds(std::get<0>(due.top()) - now).count()),
                       GPR_TIMESPAN))
             : gpr_inf_future(GPR_CLOCK_MONOTONIC);
    void* tag = nullptr;
    bool ok = false;
    switch (cq.AsyncNext(&tag, &ok, until)) {
      case grpc::CompletionQueue::GOT_EVENT:
        static_cast<Call*>(tag)->proceed(ok);
        break;
      case grpc::CompletionQueue::TIMEOUT:
        break;
      case grpc::CompletionQueue::SHUTDOWN:
        return;
    }
  }
}

const v1::FetchRequest& Lane::fetch_request(int w) {
  const LoadOptions& opt = sim.opt;
  v1::FetchRequest& req = fetch;
  req.mutable_ranges()->Clear();  // (keeps the TokenRange objects for add_ranges to reuse)
  for (int i = 0; i < opt.windows; ++i) {
    const uint32_t s = pick_shard(sim.rngs[w]);
    const uint64_t bytes = sim.shard_bytes[s];
    const uint64_t span = bytes > opt.window_bytes ? bytes - opt.window_bytes : 0;
    v1::TokenRange* r = req.add_ranges();
    r->set_shard(s);
    r->set_offset(span ? (sim.rngs[w]() % span) & ~uint64_t{1} : 0);
    r->set_length(std::min(opt.window_bytes, bytes));
  }
  return req;
}

double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

LoadSamples run_coordinator_load(const LoadOptions& opt, const SharedSecret& secret,
                                 const v1::ManifestResponse& manifest) {
  if (manifest.corpora_size() == 0 || manifest.corpora(0).splits_size() == 0)
    throw UserError("bench coordinator: the coordinator serves no corpus");
  if (opt.threads < 1) throw UserError("bench coordinator: --client-threads must be at least 1");
  Sim sim(opt);
  CoordinatorClient header_source({opt.address, "default", 10}, secret);
  sim.header = header_source.header();
  for (const v1::ShardInfo& s : manifest.corpora(0).splits(0).shards())
    sim.shard_bytes.push_back(s.tokens() * s.token_bytes());
  sim.calls.assign(opt.workers, 0);
  sim.busy.assign(opt.workers, {false, false});
  sim.waiting.resize(opt.workers);
  const int world = opt.world > 0 ? opt.world : opt.workers;

  // Each worker its own connection, set up as a real worker's (a distinct channel argument keeps
  // gRPC from sharing one).
  for (int w = 0; w < opt.workers; ++w) {
    const int rank = opt.first_worker + w;
    grpc::ChannelArguments args;
    args.SetInt("kervan.bench.worker", rank);
    sim.stubs.push_back(v1::Coordinator::NewStub(coordinator_channel(opt.address, args)));
    sim.rngs.emplace_back(static_cast<uint64_t>(rank) * 7919 + 1);
    v1::RegisterRequest reg;
    *reg.mutable_header() = sim.header;
    v1::WorkerIdentity* id = reg.mutable_worker();
    id->set_role(v1::WORKER_ROLE_TRAIN);
    id->set_host("sim");
    id->set_pid(static_cast<uint32_t>(rank));
    id->set_rank(rank);
    id->set_world_size(world);
    id->set_dp_rank(rank);
    id->set_dp_size(world);
    id->set_tp_size(1);
    v1::RegisterResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    ctx.set_wait_for_ready(true);  // a connection refused or slow under load is tried again
    const grpc::Status s = sim.stubs.back()->Register(&ctx, reg, &resp);
    if (!s.ok()) throw EnvironmentError("Register", "the coordinator at " + opt.address, s.error_message());
    sim.worker_ids.push_back(resp.worker_id());
  }

  const int lanes = std::min(opt.threads, opt.workers);
  std::vector<std::unique_ptr<Lane>> lane;
  for (int t = 0; t < lanes; ++t) lane.push_back(std::make_unique<Lane>(sim));
  LoadSamples out;
  const Clock::time_point start =
      opt.start ? opt.start() : Clock::now() + std::chrono::milliseconds(10);  // the lanes' threads start
  const double cpu0 = process_cpu_seconds();
  sim.end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.seconds));
  // Open loop: each worker's heartbeats and fetches at their periods, its phase spread over them.
  // Closed loop: every worker's first fetch at the start.
  const auto ms = [](double v) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(v));
  };
  std::mt19937_64 phase(static_cast<uint64_t>(opt.first_worker) + 1);
  for (int w = 0; w < opt.workers; ++w) {
    auto& due = lane[static_cast<size_t>(w % lanes)]->due;
    if (opt.closed_loop) {
      due.emplace(start, w, opt.fetch);
      continue;
    }
    due.emplace(start + ms(opt.heartbeat_ms * static_cast<double>(phase() % 1000) / 1000.0), w, false);
    const Clock::time_point first_fetch =
        start + ms(opt.step_ms * static_cast<double>(phase() % 1000) / 1000.0);
    if (opt.fetch) due.emplace(first_fetch, w, true);
  }
  std::vector<std::thread> threads;
  for (auto& l : lane) threads.emplace_back([&l] { l->run(); });
  for (std::thread& t : threads) t.join();
  out.process_cpu_s = process_cpu_seconds() - cpu0;

  for (auto& l : lane) {
    l->cq.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (l->cq.Next(&tag, &ok)) {
    }  // nothing is left in flight: drains the queue's own shutdown
    out.heartbeat_ms.insert(out.heartbeat_ms.end(), l->heartbeat_ms.begin(), l->heartbeat_ms.end());
    out.fetch_ms.insert(out.fetch_ms.end(), l->fetch_ms.begin(), l->fetch_ms.end());
    out.in_window += l->in_window;
    out.errors += l->errors;
    for (const auto& [code, n] : l->error_codes) out.error_codes[code] += n;
  }
  return out;
}

LoadResult summarize_load(const std::vector<LoadSamples>& parts, const LoadOptions& opt) {
  LoadResult out;
  out.seconds = opt.seconds;
  if (!opt.closed_loop)
    out.offered_per_s = opt.workers * (1000.0 / opt.heartbeat_ms + (opt.fetch ? 1000.0 / opt.step_ms : 0));
  std::vector<double> heartbeats, fetches;
  int64_t in_window = 0;
  for (const LoadSamples& p : parts) {
    heartbeats.insert(heartbeats.end(), p.heartbeat_ms.begin(), p.heartbeat_ms.end());
    fetches.insert(fetches.end(), p.fetch_ms.begin(), p.fetch_ms.end());
    in_window += p.in_window;
    out.errors += p.errors;
    for (const auto& [code, n] : p.error_codes) out.error_codes[code] += n;
    out.process_cpu_s += p.process_cpu_s;
  }
  out.heartbeats = static_cast<int64_t>(heartbeats.size());
  out.fetches = static_cast<int64_t>(fetches.size());
  out.answered_per_s = static_cast<double>(in_window) / out.seconds;
  std::vector<double> all = heartbeats;
  all.insert(all.end(), fetches.begin(), fetches.end());
  out.p50_ms = percentile(all, 0.50);
  out.p99_ms = percentile(all, 0.99);
  out.max_ms = all.empty() ? 0 : *std::max_element(all.begin(), all.end());
  out.heartbeat_p99_ms = percentile(heartbeats, 0.99);
  out.fetch_p99_ms = percentile(fetches, 0.99);
  return out;
}

}  // namespace kervan
