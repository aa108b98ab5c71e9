// `kervan prepare --coordinator HOST:PORT ...`: one of any number of processes (on one machine or
// many, sharing the output folder) that build a corpus together. Each leases work units from the
// coordinator one at a time, so a fast process takes more; a unit whose process dies is leased
// to another once its lease runs out; the process that leases the last step, after every unit,
// writes the manifest. Units are deterministic (datasets/prepare/corpus_writer.h), so the corpus
// is byte-identical to a single-process prepare of the same input.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <thread>

#include "coordinator/coordinator_client.h"
#include "coordinator/lease_keeper.h"
#include "core/error.h"
#include "datasets/prepare/corpus_dir.h"
#include "datasets/prepare/corpus_writer.h"
#include "datasets/prepare/document_tokenizer.h"
#include "datasets/prepare/text_sources.h"
#include "datasets/prepare/unit_record.h"
#include "launcher/prepare.h"

namespace kervan {

namespace v1 = coordinator::v1;
using Clock = std::chrono::steady_clock;

namespace {

// The lease was lost mid-unit: the unit is abandoned (another worker redoes it).
struct LeaseLost {};

std::string host_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host[0] ? host : "unknown";
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// The command line without the options that say how the work was shared out: the manifest
// records what the corpus was made from, the same for every way of making it.
std::string recipe_of(const std::string& command_line) {
  static const char* kDropped[] = {"--coordinator", "--job", "--token-file", "--coordinator-timeout-s"};
  std::istringstream in(command_line);
  std::string word, out;
  while (in >> word) {
    bool drop = false;
    for (const char* opt : kDropped) {
      if (word == opt) {
        in >> word;  // its value
        drop = true;
      }
      drop = drop || word.starts_with(std::string(opt) + "=");
    }
    if (!drop) out += (out.empty() ? "" : " ") + word;
  }
  return out;
}

}  // namespace

int PrepareCommand::run_leased(const std::string& command_line) const {
  const auto t0 = Clock::now();
  if (overwrite_)
    throw UserError("--overwrite does not combine with --coordinator (other processes may be writing " +
                    out_ + "); remove the folder to rebuild it");
  const SharedSecret secret = SharedSecret::require(token_file_, "kervan prepare --coordinator");
  auto client = std::make_shared<CoordinatorClient>(
      ClientOptions{coordinator_, job_id_, coordinator_timeout_s_, "--coordinator-timeout-s"}, secret);

  const DocumentTokenizer tokenizer = DocumentTokenizer::load(tokenizer_);
  std::vector<TextSource> sources = discover_text_sources(inputs_);
  if (sources.empty()) throw UserError("no .txt or .jsonl files in the inputs");
  refuse_outputs_over_inputs();
  const std::string request = corpus_request(sources, tokenizer.identity());
  // Other workers may be writing into --out already: nothing is cleaned here (CorpusDir::begin
  // does that for the manifest's lease, once every unit is complete), only checked and marked.
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(out_ + "/" + CorpusManifest::kFileName)) {
    if (read_corpus_manifest(out_).request == request) {
      spdlog::info("{} already holds the corpus these inputs and options make (manifest.json); nothing to do",
                   out_);
      return 0;
    }
    throw UserError(
        out_ +
        ": already holds a complete corpus made from other inputs or options; remove it "
        "to rebuild it (--overwrite does not combine with --coordinator), or choose another --out");
  }
  if (fs::exists(out_, ec) && !fs::is_directory(out_, ec))
    throw UserError(out_ + ": --out exists and is not a folder");
  if (fs::is_directory(out_, ec) && !fs::is_directory(out_ + "/" + kUnitRecordDir, ec) &&
      !fs::is_empty(out_, ec))
    throw UserError(
        out_ + ": --out is a folder with other files in it, not a kervan corpus (no " +
        CorpusManifest::kFileName + ", no " + kUnitRecordDir +
        "/ of an unfinished prepare); kervan writes only into a new or empty folder or one it made");
  fs::create_directories(out_ + "/" + kUnitRecordDir, ec);  // the marker: this folder is kervan's
  if (ec) throw UserError(out_ + ": cannot create the output folder: " + ec.message());
  const CorpusOptions options = corpus_options();
  const ValRule val = val_rule(sources, options.read);
  CorpusBuilder builder(options, std::move(sources), tokenizer, val);
  const auto units = static_cast<uint32_t>(builder.units().size());

  v1::WorkerIdentity me;
  me.set_role(v1::WORKER_ROLE_PREPARE);
  me.set_host(host_name());
  me.set_pid(static_cast<uint32_t>(::getpid()));
  me.set_rank(env_int("OMPI_COMM_WORLD_RANK", 0));
  me.set_world_size(std::max(env_int("OMPI_COMM_WORLD_SIZE", 1), me.rank() + 1));
  me.set_dp_size(1);
  me.set_tp_size(1);
  const uint64_t worker = client->register_worker(me, {}).worker_id();
  client->begin_prepare(worker, builder.plan_fingerprint(), units);
  spdlog::info("worker {} of the prepare at {}: {} input files, {} work units, tokenizer {}, {} threads",
               worker, coordinator_, builder.sources().size(), units, tokenizer.identity().name,
               options.threads);

  BuildStats here;
  size_t built_units = 0;
  for (;;) {
    const v1::LeaseResponse r = client->lease_unit(worker);
    if (r.all_done()) break;
    if (!r.has_lease()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(r.retry_in_ms()));
      continue;
    }
    const v1::Lease lease = r.lease();
    const std::chrono::milliseconds term(lease.expires_in_ms());
    // Renewals get a client of their own that gives up quickly: a lease must not outlive its term
    // waiting on one call.
    auto renew_client = std::make_shared<CoordinatorClient>(
        ClientOptions{coordinator_, job_id_, std::chrono::duration<double>(term).count() / 4,
                      "the lease term"},
        secret);
    std::string lost_why;
    try {
      LeaseKeeper keeper(renew_client, worker, lease.lease_id(), term);
      const auto check_lease = [&] {
        if (!keeper.lost()) return;
        lost_why = keeper.why_lost();
        throw LeaseLost{};
      };
      if (lease.unit() < units) {
        const auto u0 = Clock::now();
        const BuildStats s = builder.build({lease.unit()}, [&](const BuildProgress&) { check_lease(); });
        check_lease();
        here.bytes += s.bytes;
        here.documents += s.documents;
        here.tokens += s.tokens;
        here.kept_shards += s.kept_shards;
        built_units += s.built_units;
        spdlog::info("unit {}: {} ({} documents, {} tokens) in {:.1f} s", lease.unit(),
                     s.kept_units ? "kept from an earlier run" : "built", s.documents, s.tokens,
                     std::chrono::duration<double>(Clock::now() - u0).count());
      } else {                                          // every unit is complete: the manifest
        const std::unique_ptr<CorpusDir> dir = CorpusDir::begin(out_, false, request);
        if (!dir->complete()) {  // (begin also clears .tmp files of abandoned units)
          CorpusManifest m = builder.manifest(recipe_of(command_line));
          m.request = request;
          check_corpus_contents(m, val);
          check_lease();
          dir->finish(m);
          log_corpus_summary(m, std::chrono::duration<double>(Clock::now() - t0).count(), here.bytes,
                             here.kept_shards);
        }
      }
    } catch (const LeaseLost&) {
      spdlog::warn("unit {}: lease lost, left to another worker: {}", lease.unit(), lost_why);
      continue;
    }
    try {
      client->complete_unit(worker, lease.lease_id());
    } catch (const CoordinatorRefusal& e) {
      if (e.code() != grpc::StatusCode::FAILED_PRECONDITION) throw;
      spdlog::warn("unit {}: finished, but the lease had passed to another worker ({})", lease.unit(),
                   e.what());
    }
  }
  v1::HeartbeatRequest bye;
  bye.set_worker_id(worker);
  bye.set_finished(true);
  client->heartbeat(bye);
  spdlog::info("done: this worker built {} units ({:.1f} MB of input) in {:.1f} s", built_units,
               here.bytes / 1e6, std::chrono::duration<double>(Clock::now() - t0).count());
  return 0;
}

}  // namespace kervan
