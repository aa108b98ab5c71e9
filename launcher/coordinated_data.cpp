#include "launcher/coordinated_data.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/backend.h"
#include "core/error.h"
#include "datasets/format/atomic_file.h"
#include "datasets/format/corpus_manifest.h"

namespace kervan {

namespace v1 = coordinator::v1;
namespace fs = std::filesystem;

namespace {

std::string default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/kervan/tokens";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/kervan/tokens";
  return "/tmp/kervan-tokens";
}

std::string host_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host[0] ? host : "localhost";
}

// Rank 0's string on every rank (a collective over `world`).
std::string from_rank0(Communicator& world, Backend& be, const std::string& s) {
  constexpr size_t kWords = 512;  // 2 KiB: an address and a token
  std::vector<int32_t> words(kWords + 1, 0);
  if (world.rank() == 0) {
    KERVAN_CHECK(s.size() <= kWords * 4, "from_rank0: string too long");
    words[0] = static_cast<int32_t>(s.size());
    std::memcpy(words.data() + 1, s.data(), s.size());
  }
  Tensor t = be.empty({static_cast<int64_t>(words.size())}, DType::I32);
  be.copy_from_host(t, words.data());
  world.broadcast(t, 0);
  words = be.to_host<int32_t>(t);
  return std::string(reinterpret_cast<const char*>(words.data() + 1), static_cast<size_t>(words[0]));
}

std::string random_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw EnvironmentError("RAND_bytes", "OpenSSL", "no randomness");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) out += hex[b >> 4], out += hex[b & 15];
  return out;
}

}  // namespace

CoordinatedData::CoordinatedData(const RunConfig& cfg, const ProcessGrid& grid, bool single_node,
                                 Communicator& world, Backend& be)
    : job_id_(cfg.data.coordinator_job), model_vocab_(cfg.model.vocab_size) {
  const RunConfig::Data& d = cfg.data;
  const std::string cache_root =
      (d.cache_dir.empty() ? default_cache_dir() : d.cache_dir) + "/" + d.coordinator_job;
  std::optional<SharedSecret> secret;
  if (cfg.parallel.coordinator == "embedded") {
    std::string shared;
    if (grid.world_rank == 0) {
      const std::optional<SharedSecret> given = SharedSecret::find("");
      const std::string token = given ? given->token() : random_token();
      std::error_code ec;
      fs::create_directories(cache_root, ec);
      if (ec) throw UserError("data.cache_dir: cannot create " + cache_root + ": " + ec.message());
      CoordinatorOptions o;
      for (const std::string& p : d.paths) o.corpora.push_back(CorpusSpec::parse(p));
      o.listen = single_node ? "127.0.0.1:0" : "0.0.0.0:0";
      o.journal = cache_root + "/coordinator.journal";
      o.job_id = d.coordinator_job;
      o.threads = 1;  // rank 0 trains too
      o.journal_advice =
          "the embedded coordinator keeps one journal per job in data.cache_dir: give this data "
          "its own job with data.coordinator_job, or train on the data.path the job began with";
      embedded_ = std::make_unique<CoordinatorServer>(o, SharedSecret(token));
      const std::string port = embedded_->address().substr(embedded_->address().rfind(':') + 1);
      const std::string address = (single_node ? std::string("127.0.0.1") : host_name()) + ":" + port;
      if (!given) {  // for `kervan status --token-file`
        const std::string token_file = cache_root + "/coordinator.token";
        const int fd = ::open(token_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ::write(fd, token.data(), token.size()) != static_cast<ssize_t>(token.size()))
          throw UserError("data.cache_dir: cannot write " + token_file + ": " + std::strerror(errno));
        ::close(fd);
      }
      write_file_atomically(cache_root + "/coordinator.address", address + "\n");
      spdlog::info("embedded coordinator of job '{}' at {} (journal {}; kervan status --coordinator {}{})",
                   d.coordinator_job, address, o.journal, address,
                   given ? "" : " --token-file " + cache_root + "/coordinator.token");
      shared = address + "\n" + token;
    }
    shared = from_rank0(world, be, shared);
    address_ = shared.substr(0, shared.find('\n'));
    secret = SharedSecret(shared.substr(shared.find('\n') + 1));
    for (const std::string& p : d.paths) served_as_[p] = CorpusSpec::parse(p).name;
  } else {
    address_ = d.coordinator;
    secret = SharedSecret::require("", "data.coordinator (" + address_ + ")");
  }

  client_ = std::make_shared<CoordinatorClient>(
      ClientOptions{address_, d.coordinator_job, d.coordinator_timeout_s, "data.coordinator_timeout_s"},
      *secret);
  const std::string cache = cache_root + "/rank-" + std::to_string(grid.world_rank);
  try {
    corpora_ = std::make_unique<RemoteCorpora>(
        client_, TokenCache::Options{cache, static_cast<uint64_t>(d.cache_gb * 1e9)});
  } catch (const UserError& e) {
    throw UserError(std::string("data.cache_dir: ") + e.what());
  }
  paths_ = d.paths.empty() ? corpora_->names() : d.paths;
  if (paths_.empty()) throw UserError("data.coordinator " + address_ + " serves no corpus");

  v1::WorkerIdentity me;
  me.set_role(v1::WORKER_ROLE_TRAIN);
  me.set_host(host_name());
  me.set_pid(static_cast<uint32_t>(::getpid()));
  me.set_rank(grid.world_rank);
  me.set_world_size(grid.world_size);
  me.set_dp_rank(grid.dp_rank);
  me.set_dp_size(grid.dp);
  me.set_tp_rank(grid.tp_rank);
  me.set_tp_size(grid.tp);
  v1::RunShape run;
  run.set_seq_len(cfg.train.seq_len);
  run.set_global_batch(cfg.train.micro_batch * grid.dp * cfg.train.grad_accum);
  run.set_total_steps(cfg.train.steps);
  session_ = std::make_unique<WorkerSession>(client_, me, run);
}

void CoordinatedData::align_committed(const std::string& resumed_from, int64_t step,
                                      int64_t consumed_samples) {
  const std::optional<v1::DataPosition>& c = session_->committed();
  const bool same = c && c->step() == step && c->consumed_samples() == consumed_samples;
  if (same) {
    if (!resumed_from.empty())
      spdlog::info("resumed at the data position the coordinator committed: step {}, {} samples ({})",
                   c->step(), c->consumed_samples(), c->checkpoint());
    return;
  }
  if (c && resumed_from.empty())
    spdlog::warn(
        "the coordinator at {} holds a data position of job '{}' committed at step {} ({}), but this run "
        "resumes no checkpoint and starts at step 0; the coordinator's position is reset to it",
        address_, job_id_, c->step(), c->checkpoint());
  else if (c)
    spdlog::warn(
        "resumed at step {} from {}, but the coordinator at {} last committed the data position of step {} "
        "({}); the checkpoint's own position is used, and committed with the coordinator",
        step, resumed_from, address_, c->step(), c->checkpoint());
  if (c || !resumed_from.empty()) session_->commit_position(step, consumed_samples, resumed_from);
}

std::vector<std::string> CoordinatedData::served_corpora() const {
  std::vector<std::string> out;
  for (const std::string& path : paths_) {
    const auto it = served_as_.find(path);
    const std::string& name = it == served_as_.end() ? path : it->second;
    for (const v1::CorpusInfo& c : corpora_->manifest().corpora())
      if (c.name() == name) out.push_back(name + " " + checksum_hex(c.fingerprint()));
  }
  return out;
}

OpenSource CoordinatedData::opener() {
  return [this](const std::string& path, const std::string& split) {
    const auto it = served_as_.find(path);
    return corpora_->open(it == served_as_.end() ? path : it->second, split, model_vocab_);
  };
}

}  // namespace kervan
