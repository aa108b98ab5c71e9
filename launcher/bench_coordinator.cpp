// `kervan bench coordinator`: what one coordinator sustains, on loopback, in three parts.
//  (a) simulated workers (coordinator_load.h): answered RPCs/s and p50/p99 latency, at a GPU
//      worker's pace, at twice that, and flat out (closed loop);
//  (b) token-data streaming in MB/s next to a plain TCP loopback copy of the same bytes;
//  (c) the coordinator's memory for a manifest of --manifest-tokens tokens (synthetic; no files).
// The coordinator runs in this process, the simulated workers of (a) in child processes
// (launcher/coordinator_load_children.h); all share the machine's cores.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "coordinator/coordinator_client.h"
#include "coordinator/coordinator_server.h"
#include "core/error.h"
#include "datasets/format/corpus_manifest.h"
#include "datasets/format/token_shard.h"
#include "launcher/bench.h"
#include "launcher/coordinator_load.h"
#include "launcher/coordinator_load_children.h"

namespace kervan {

namespace v1 = coordinator::v1;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kVocab = 50257;  // GPT-2's: uint16 tokens

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A corpus of random tokens in documents of 1024, in shards of 16M tokens (32 MB).
void write_corpus(const fs::path& dir, double megabytes) {
  fs::create_directories(dir);
  CorpusManifest m;
  m.tokenizer = {"bench", kVocab, kVocab - 1, ""};
  m.created_by = "kervan bench coordinator";
  const auto total = static_cast<uint64_t>(megabytes * 1e6 / 2);
  constexpr uint64_t kShardTokens = 16u << 20;
  std::mt19937_64 rng(42);
  std::vector<uint32_t> doc(1024);
  for (uint64_t done = 0, s = 0; done < total; ++s) {
    const std::string file = "train-" + std::to_string(s) + ".kvs";
    TokenShardWriter w((dir / file).string(), kVocab);
    for (uint64_t n = 0; n < kShardTokens && done < total; n += doc.size(), done += doc.size()) {
      for (uint32_t& t : doc) t = static_cast<uint32_t>(rng() % kVocab);
      w.add_document(doc);
    }
    const ShardHeader h = w.finish();
    m.splits["train"].push_back(
        {file, h.token_count, h.document_count, fs::file_size(dir / file), h.checksum});
  }
  write_corpus_manifest(dir.string(), m);
}

void print(const nlohmann::json& j) {
  std::printf("%s\n", j.dump().c_str());
}

// CPU seconds of this process (every thread: the coordinator's, the client's) so far.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// One load run's options: a fetch every `pace` ms (0: closed loop).
LoadOptions load_options(const BenchCoordinatorOptions& opt, const std::string& address, double pace) {
  LoadOptions lo;
  lo.address = address;
  lo.workers = opt.workers;
  lo.seconds = opt.seconds;
  lo.warmup_s = opt.warmup_s;
  lo.step_ms = pace == 0 ? 100 : pace;
  lo.closed_loop = pace == 0;
  lo.threads = opt.client_threads;
  lo.heartbeat_ms = opt.heartbeat_ms;
  lo.fetch = !opt.no_fetch;
  lo.client = opt.client == "grpc" ? LoadClient::kGrpc : LoadClient::kH2;
  return lo;
}

// `in_process`: the coordinator runs in this process.
void bench_rpc(const BenchCoordinatorOptions& opt, const std::string& address, const SharedSecret& secret,
               const v1::ManifestResponse& manifest, bool in_process) {
  // A fetch per step is a worker whose token cache never hits; one per second is closer to a
  // warm cache (docs/scaling.md).
  for (const double pace : opt.paces_ms) {
    const bool closed = pace == 0;
    const std::string mode = opt.no_fetch
                                 ? (closed ? "closed loop, heartbeats only"
                                           : fmt::format("heartbeats only, every {:g} ms", opt.heartbeat_ms))
                                 : (closed ? "closed loop" : fmt::format("fetch every {:g} ms", pace));
    const LoadOptions lo = load_options(opt, address, pace);
    // The workers in child processes, unless one process is asked for and the coordinator is
    // another process already: then in this one.
    const bool here = opt.client_processes == 1 && !in_process;
    const double cpu0 = cpu_seconds();
    const LoadResult r = here ? summarize_load({run_coordinator_load(lo, secret, manifest)}, lo)
                              : run_coordinator_load_in_children(lo, opt.client_processes, secret);
    // With the workers in children, this process's CPU is the in-process coordinator's (its
    // registrations included, as with a coordinator of its own in bench/coordinator_before_after.sh).
    // (CPU per RPC counts the warm-up's calls, which the CPU time includes)
    const auto calls = static_cast<double>(std::max<int64_t>(1, r.heartbeats + r.fetches + r.warmup_calls));
    const double coordinator_us = in_process ? 1e6 * (cpu_seconds() - cpu0) / (calls + opt.workers) : 0;
    nlohmann::json line = {
        {"bench", "coordinator_rpc"},
        {"mode", mode},
        {"workers", opt.workers},
        {"client_processes", here ? 0 : opt.client_processes},
        {"client_threads", opt.client_threads},
        {"client", opt.client},
        {"offered_rpc_per_s", r.offered_per_s},
        {"answered_rpc_per_s", r.answered_per_s},
        {"heartbeats", r.heartbeats},
        {"fetches", r.fetches},
        {"fetch_windows", lo.windows},
        {"errors", r.errors},
        {"error_codes", r.error_codes},
        {"p50_ms", r.p50_ms},
        {"p99_ms", r.p99_ms},
        {"max_ms", r.max_ms},
        {"heartbeat_p99_ms", r.heartbeat_p99_ms},
        {"fetch_p99_ms", r.fetch_p99_ms},
        {"warmup_s", lo.warmup_s},
        {"warmup_calls", r.warmup_calls},
        {"warmup_p99_ms", r.warmup_p99_ms},
        // the simulated workers' CPU alone, registration excluded
        {"process_cpu_us_per_rpc", 1e6 * r.process_cpu_s / calls}};
    if (in_process) line["coordinator_cpu_us_per_rpc"] = coordinator_us;
    print(line);
  }
}

// Every train shard's token section through FetchTokens (8 MiB ranges, as many per request as
// the server allows), checksums verified by the client as always. Returns MB/s.
double grpc_stream(const std::string& address, const SharedSecret& secret,
                   const v1::ManifestResponse& manifest) {
  CoordinatorClient client({address, "default", 30}, secret);
  const v1::SplitInfo& train = manifest.corpora(0).splits(0);
  uint64_t received = 0;
  const auto t0 = Clock::now();
  v1::FetchRequest req;
  req.set_corpus(0);
  req.set_split("train");
  uint64_t in_request = 0;
  const auto flush = [&] {
    if (req.ranges_size() == 0) return;
    client.fetch(req, [&](const v1::TokenChunk& piece) { received += piece.data().size(); });
    req.clear_ranges();
    in_request = 0;
  };
  for (int s = 0; s < train.shards_size(); ++s) {
    const uint64_t bytes = train.shards(s).tokens() * train.shards(s).token_bytes();
    for (uint64_t off = 0; off < bytes; off += 8 << 20) {
      const uint64_t n = std::min<uint64_t>(8 << 20, bytes - off);
      if (in_request + n > manifest.max_fetch_bytes()) flush();
      v1::TokenRange* r = req.add_ranges();
      r->set_shard(static_cast<uint32_t>(s));
      r->set_offset(off);
      r->set_length(n);
      in_request += n;
    }
  }
  flush();
  return received / 1e6 / seconds_since(t0);
}

// The same bytes over a plain loopback TCP connection: one thread send()s the mapped token
// sections in 1 MiB pieces, this one recv()s them into a buffer. Returns MB/s.
double tcp_copy(const std::vector<std::unique_ptr<TokenShard>>& shards) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw EnvironmentError("socket/bind/listen", "127.0.0.1", std::strerror(errno));
  std::thread sender([&] {
    const int fd = ::accept(listener, nullptr, nullptr);
    for (const auto& s : shards) {
      const char* p = static_cast<const char*>(s->token_data());
      for (uint64_t left = s->token_count() * s->token_bytes(); left > 0;) {
        const ssize_t w = ::send(fd, p, std::min<uint64_t>(left, 1 << 20), 0);
        if (w <= 0) break;
        p += w;
        left -= static_cast<uint64_t>(w);
      }
    }
    ::close(fd);
  });
  const auto t0 = Clock::now();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw EnvironmentError("connect", "127.0.0.1", std::strerror(errno));
  std::vector<char> buffer(1 << 20);
  uint64_t received = 0;
  for (ssize_t r; (r = ::recv(fd, buffer.data(), buffer.size(), 0)) > 0;)
    received += static_cast<uint64_t>(r);
  const double mb_s = received / 1e6 / seconds_since(t0);
  sender.join();
  ::close(fd);
  ::close(listener);
  return mb_s;
}

void bench_stream(const BenchCoordinatorOptions& opt, const fs::path& corpus, const std::string& address,
                  const SharedSecret& secret, const v1::ManifestResponse& manifest) {
  const auto shards = open_split_shards(corpus.string(), read_corpus_manifest(corpus.string()), "train");
  std::vector<double> grpc, tcp;
  double grpc_cpu = 0, tcp_cpu = 0;
  for (int r = 0; r < opt.rounds; ++r) {  // alternating, so both see the same machine
    double c0 = cpu_seconds();
    grpc.push_back(grpc_stream(address, secret, manifest));
    grpc_cpu += cpu_seconds() - c0;
    c0 = cpu_seconds();
    tcp.push_back(tcp_copy(shards));
    tcp_cpu += cpu_seconds() - c0;
  }
  const double gb = opt.rounds * opt.corpus_mb / 1e3;
  std::sort(grpc.begin(), grpc.end());
  std::sort(tcp.begin(), tcp.end());
  const double g = grpc[grpc.size() / 2], t = tcp[tcp.size() / 2];
  print({{"bench", "coordinator_stream"},
         {"megabytes", opt.corpus_mb},
         {"rounds", opt.rounds},
         {"grpc_mb_per_s", g},
         {"tcp_copy_mb_per_s", t},
         {"ratio", g / t},
         {"grpc_cpu_s_per_gb", grpc_cpu / gb},  // both ends, every thread: robust to a busy machine
         {"tcp_cpu_s_per_gb", tcp_cpu / gb},
         {"grpc_all", grpc},
         {"tcp_all", tcp}});
}

// Heap in use: small blocks plus the large ones malloc maps separately.
size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// The coordinator's memory for a corpus of `tokens` tokens in shards of `shard_tokens`, measured
// as heap in use before and after building what the coordinator keeps per corpus: the manifest,
// the ManifestResponse and its serialized form. A served shard also holds a TokenShard (its
// mapping is virtual memory, page cache when read); its size is counted per shard. Plus the job
// state of `workers` registered workers.
void bench_memory(const BenchCoordinatorOptions& opt) {
  const uint64_t shards = (opt.manifest_tokens + opt.shard_tokens - 1) / opt.shard_tokens;
  const size_t h0 = heap_in_use();
  auto manifest = std::make_unique<CorpusManifest>();
  manifest->tokenizer = {"gpt2", kVocab, kVocab - 1, std::string(129, 'f')};
  auto& train = manifest->splits["train"];
  for (uint64_t s = 0; s < shards; ++s) {
    const uint64_t t = std::min(opt.shard_tokens, opt.manifest_tokens - s * opt.shard_tokens);
    char file[40];
    std::snprintf(file, sizeof file, "train-%05llu-%05llu.kvs", static_cast<unsigned long long>(s / 1000),
                  static_cast<unsigned long long>(s % 1000));
    train.push_back({file, t, t / 500, shard_file_bytes(t, t / 500, 2), s * 0x9E3779B97F4A7C15ull});
  }
  const size_t h1 = heap_in_use();
  auto info = std::make_unique<v1::ManifestResponse>();
  *info->add_corpora() = corpus_info("big", *manifest);
  const size_t h2 = heap_in_use();
  const std::string serialized = info->SerializeAsString();
  const size_t h3 = heap_in_use();
  const uint64_t shard_objects = shards * (sizeof(TokenShard) + 64);  // the object and its path

  JobState state("bench", {}, opt.manifest_tokens, 0);
  for (int w = 0; w < opt.workers; ++w) {
    v1::JournalRecord r;
    v1::WorkerRegistered* reg = r.mutable_registered();
    reg->set_worker_id(static_cast<uint64_t>(w) + 1);
    reg->mutable_identity()->set_role(v1::WORKER_ROLE_TRAIN);
    reg->mutable_identity()->set_host("node-" + std::to_string(w / 8) + ".cluster.example");
    reg->mutable_identity()->set_rank(w);
    reg->mutable_identity()->set_world_size(opt.workers);
    state.apply(r, 0);
  }
  const size_t h4 = heap_in_use();
  const double mb = 1e6;
  print({{"bench", "coordinator_memory"},
         {"tokens", opt.manifest_tokens},
         {"shard_tokens", opt.shard_tokens},
         {"shards", shards},
         {"manifest_mb", (h1 - h0) / mb},
         {"manifest_response_mb", (h2 - h1) / mb},
         {"manifest_response_serialized_mb", (h3 - h2) / mb},
         {"serialized_bytes_per_worker_fetch", serialized.size()},
         {"token_shard_objects_mb", shard_objects / mb},
         {"job_state_mb", (h4 - h3) / mb},
         {"workers", opt.workers},
         {"total_mb", (h4 - h0 + shard_objects) / mb}});
}

}  // namespace

int run_bench_coordinator(const BenchCoordinatorOptions& opt) {
  if (opt.workers < 1 || opt.seconds <= 0 || opt.rounds < 1 || opt.corpus_mb <= 0 || opt.shard_tokens == 0)
    throw UserError(
        "bench coordinator: --workers, --seconds, --rounds, --corpus-mb and --shard-tokens must be positive");
  const bool all = opt.only.empty();
  if (!opt.coordinator.empty()) {
    if (opt.only != "rpc") throw UserError("bench coordinator: --coordinator goes with --only rpc");
    const SharedSecret secret = SharedSecret::require("", "bench coordinator --coordinator");
    if (opt.load_child >= 0) {  // one of a parent's simulated-workers processes
      LoadOptions lo = load_options(opt, opt.coordinator, opt.paces_ms.at(0));
      lo.first_worker = opt.load_child;
      lo.world = opt.load_world;
      run_coordinator_load_child(lo, secret);
      return 0;
    }
    bench_rpc(opt, opt.coordinator, secret,
              CoordinatorClient({opt.coordinator, "default", 10}, secret).manifest(), false);
    return 0;
  }
  if (all || opt.only == "memory") bench_memory(opt);
  if (!all && opt.only != "rpc" && opt.only != "stream") return 0;

  char tmpl[] = "/tmp/kervan-bench-coordinator-XXXXXX";
  if (!::mkdtemp(tmpl)) throw EnvironmentError("mkdtemp", tmpl, std::strerror(errno));
  const fs::path dir(tmpl);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};
  write_corpus(dir / "corpus", opt.corpus_mb);
  CoordinatorOptions co;
  co.corpora = {CorpusSpec{"bench", (dir / "corpus").string()}};
  co.listen = "127.0.0.1:0";
  co.journal = (dir / "journal").string();
  co.job_id = "default";
  co.timing.dead_after_ms = 3'600'000;  // each load run's workers go quiet when it ends
  const SharedSecret secret("bench-secret");
  CoordinatorServer server(co, secret);
  const v1::ManifestResponse manifest = server.catalog().manifest();
  if (all || opt.only == "stream") bench_stream(opt, dir / "corpus", server.address(), secret, manifest);
  if (all || opt.only == "rpc") bench_rpc(opt, server.address(), secret, manifest, true);
  return 0;
}

}  // namespace kervan
