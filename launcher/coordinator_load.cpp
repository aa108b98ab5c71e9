#include "launcher/coordinator_load.h"

#include <sys/resource.h>

#include <algorithm>
#include <thread>

#include "coordinator/coordinator_client.h"
#include "coordinator/token_cache.h"
#include "core/error.h"
#include "launcher/coordinator_load_lane.h"

namespace kervan {

namespace v1 = coordinator::v1;

namespace load {

Lane::Lane(Sim& s) : sim(s), pick_shard_(s.shard_bytes.begin(), s.shard_bytes.end()) {
  *fetch_.mutable_header() = sim.header;
  fetch_.set_corpus(0);
  fetch_.set_split("train");
  *heartbeat_.mutable_header() = sim.header;
}

void Lane::send(int w, bool fetch, Clock::time_point due_at) {
  if (sim.busy[w][fetch]) return sim.waiting[w][fetch].push_back(due_at);
  sim.busy[w][fetch] = true;
  in_flight_++;
  start_call(w, fetch, due_at);
}

void Lane::record(int w, bool fetch, Clock::time_point due_at, grpc::StatusCode code) {
  const Clock::time_point now = Clock::now();
  // Answers count (in the rate and the latencies); failures are counted apart.
  const bool ok = code == grpc::StatusCode::OK;
  const double ms = std::chrono::duration<double, std::milli>(now - due_at).count();
  if (ok) (due_at < sim.timed ? warmup_ms : fetch ? fetch_ms : heartbeat_ms).push_back(ms);
  if (ok && sim.timed <= now && now <= sim.end) in_window++;
  if (!ok) errors++, error_codes[status_code_name(code)]++;
  in_flight_--;
  sim.busy[w][fetch] = false;
  if (std::deque<Clock::time_point>& next = sim.waiting[w][fetch]; !next.empty()) {
    const Clock::time_point was_due = next.front();
    next.pop_front();
    send(w, fetch, was_due);
  }
  // Closed loop: the worker's next call at once, unless this one failed (where a real worker
  // would back off, this one stops).
  if (sim.opt.closed_loop && ok && now < sim.end) send(w, sim.opt.fetch && ++sim.calls[w] % 11 != 10, now);
}

// Sends what is due and takes answers until the next call is due; after the timed window,
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
    if (!more && in_flight_ == 0) return;
    wait(more ? std::get<0>(due.top()) : Clock::time_point::max());
  }
}

const v1::FetchRequest& Lane::fetch_request(int w) {
  const LoadOptions& opt = sim.opt;
  fetch_.mutable_ranges()->Clear();  // (keeps the TokenRange objects for add_ranges to reuse)
  for (int i = 0; i < opt.windows; ++i) {
    const uint32_t s = pick_shard_(sim.rngs[w]);
    const uint64_t bytes = sim.shard_bytes[s];
    const uint64_t span = bytes > opt.window_bytes ? bytes - opt.window_bytes : 0;
    const uint64_t at = span ? (sim.rngs[w]() % span) & ~uint64_t{1} : 0;
    // The blocks that hold the window, as a worker's token cache asks for them.
    constexpr uint64_t kBlock = TokenCache::kBlockBytes;
    const uint64_t begin = at / kBlock * kBlock;
    const uint64_t end =
        std::min(bytes, (at + std::min(opt.window_bytes, bytes) + kBlock - 1) / kBlock * kBlock);
    v1::TokenRange* r = fetch_.add_ranges();
    r->set_shard(s);
    r->set_offset(begin);
    r->set_length(end - begin);
  }
  return fetch_;
}

const v1::HeartbeatRequest& Lane::heartbeat_request(int w) {
  heartbeat_.set_worker_id(sim.worker_ids[w]);
  heartbeat_.set_step(1);
  heartbeat_.set_consumed_samples(16);
  heartbeat_.set_tokens_per_s(160000);
  return heartbeat_;
}

}  // namespace load

namespace {

using load::Clock;
using load::Lane;
using load::Sim;

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

  for (int w = 0; w < opt.workers; ++w) {
    const int rank = opt.first_worker + w;
    sim.rngs.emplace_back(static_cast<uint64_t>(rank) * 7919 + 1);
    v1::WorkerIdentity id;
    id.set_role(v1::WORKER_ROLE_TRAIN);
    id.set_host("sim");
    id.set_pid(static_cast<uint32_t>(rank));
    id.set_rank(rank);
    id.set_world_size(world);
    id.set_dp_rank(rank);
    id.set_dp_size(world);
    id.set_tp_size(1);
    sim.worker_ids.push_back(header_source.register_worker(id, {}).worker_id());
  }

  // Each lane connects its workers, each worker a connection of its own.
  const int lanes = std::min(opt.threads, opt.workers);
  std::vector<std::unique_ptr<Lane>> lane;
  for (int t = 0; t < lanes; ++t)
    lane.push_back(opt.client == LoadClient::kGrpc ? load::make_grpc_lane(sim, t, lanes)
                                                   : load::make_h2_lane(sim, t, lanes));
  LoadSamples out;
  const Clock::time_point start =
      opt.start ? opt.start() : Clock::now() + std::chrono::milliseconds(10);  // the lanes' threads start
  const double cpu0 = process_cpu_seconds();
  const auto seconds = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  sim.timed = start + seconds(opt.warmup_s);
  sim.end = sim.timed + seconds(opt.seconds);
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
    out.heartbeat_ms.insert(out.heartbeat_ms.end(), l->heartbeat_ms.begin(), l->heartbeat_ms.end());
    out.fetch_ms.insert(out.fetch_ms.end(), l->fetch_ms.begin(), l->fetch_ms.end());
    out.warmup_ms.insert(out.warmup_ms.end(), l->warmup_ms.begin(), l->warmup_ms.end());
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
  std::vector<double> heartbeats, fetches, warmup;
  int64_t in_window = 0;
  for (const LoadSamples& p : parts) {
    heartbeats.insert(heartbeats.end(), p.heartbeat_ms.begin(), p.heartbeat_ms.end());
    warmup.insert(warmup.end(), p.warmup_ms.begin(), p.warmup_ms.end());
    fetches.insert(fetches.end(), p.fetch_ms.begin(), p.fetch_ms.end());
    in_window += p.in_window;
    out.errors += p.errors;
    for (const auto& [code, n] : p.error_codes) out.error_codes[code] += n;
    out.process_cpu_s += p.process_cpu_s;
  }
  out.heartbeats = static_cast<int64_t>(heartbeats.size());
  out.fetches = static_cast<int64_t>(fetches.size());
  out.warmup_calls = static_cast<int64_t>(warmup.size());
  out.warmup_p99_ms = percentile(warmup, 0.99);
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
