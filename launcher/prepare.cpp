#include "launcher/prepare.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "launcher/cli_checks.h"
#include "core/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/paths.h"
#include "core/rng.h"
#include "datasets/format/llmc_token_file.h"
#include "datasets/prepare/corpus_writer.h"
#include "datasets/prepare/document_tokenizer.h"
#include "datasets/prepare/llmc_corpus.h"
#include "datasets/prepare/text_sources.h"
#include "datasets/tokenizer/tokenizer_files.h"
#include "launcher/progress.h"
#include "parallel/mpi_runtime.h"
#include "parallel/shared_outcome.h"

namespace kervan {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void log_corpus_summary(const CorpusManifest& m, double seconds, uint64_t built_bytes, size_t kept_shards) {
  const uint64_t train = m.split_tokens("train"), val = m.split_tokens("val"), input_bytes = m.source_bytes();
  const auto count = [&](const char* split) {
    return m.splits.contains(split) ? m.splits.at(split).size() : 0;
  };
  spdlog::info(
      "prepared {} documents, {} tokens (train {} in {} shards, val {} in {} shards) from {:.1f} MB in "
      "{:.1f} s "
      "({:.1f} MB/s, {:.3f} tokens per byte){}{}",
      m.documents(), train + val, train, count("train"), val, count("val"), input_bytes / 1e6, seconds,
      seconds > 0 ? built_bytes / 1e6 / seconds : 0.0, input_bytes ? double(train + val) / input_bytes : 0.0,
      m.skipped_lines() ? fmt::format("; skipped {} bad lines", m.skipped_lines()) : "",
      kept_shards ? fmt::format("; kept {} shards from an earlier run", kept_shards) : "");
}

// A corpus without documents is an error; empty input files and an empty validation split are
// worth a warning.
void check_corpus_contents(const CorpusManifest& m, const ValRule& val) {
  if (m.documents() == 0)
    throw UserError("the input holds no documents (" + std::to_string(m.sources.size()) +
                    " files, all empty)");
  size_t empty = 0;
  for (const SourceEntry& s : m.sources)
    if (s.documents == 0 && empty++ < 10) spdlog::warn("{}: no documents", s.path);
  if (empty > 10) spdlog::warn("... {} input files without documents in all", empty);
  if (!val.none && m.split_tokens("val") == 0)
    spdlog::warn("the validation split is empty (the input is small)");
}

namespace {

void log_already_complete(const std::string& dir) {
  spdlog::info(
      "{} already holds the corpus these inputs and options make (manifest.json); nothing to do "
      "(--overwrite rebuilds it)",
      dir);
}

// CorpusManifest::request: a checksum of the options that shape the corpus and of every input
// file with its size and modification time.
std::string request_checksum(nlohmann::json options, const std::vector<std::string>& input_files) {
  nlohmann::json inputs = nlohmann::json::array();
  for (const std::string& f : input_files) {
    std::error_code ec;
    const auto mtime = std::filesystem::last_write_time(f, ec).time_since_epoch().count();
    inputs.push_back({f, std::filesystem::file_size(f, ec), mtime});
  }
  options["inputs"] = std::move(inputs);
  return checksum_hex(stream_key(0, options.dump()));
}

// Under mpirun each rank makes every ranks-th work unit.
std::vector<size_t> units_of_rank(size_t units, int rank, int ranks) {
  std::vector<size_t> mine;
  for (size_t u = 0; u < units; ++u)
    if (static_cast<int>(u % ranks) == rank) mine.push_back(u);
  return mine;
}

}  // namespace

PrepareCommand::PrepareCommand(CLI::App& app) {
  cmd_ = app.add_subcommand("prepare",
                            "Turn text files (.txt, .jsonl, optionally .gz/.zst) into a kervan corpus");
  cmd_->add_option("--out", out_, "Output corpus folder (or X.bin: legacy llm.c token file of byte tokens)")
      ->required();
  tokenizer_opt_ = cmd_->add_option("--tokenizer", tokenizer_,
                                    "gpt2 (default), bytes, or a folder with "
                                    "encoder.json and vocab.bpe (with --from-llmc: the "
                                    "name recorded in the manifest)");
  cmd_->add_option("--threads", threads_, "Tokenizer threads (default: hardware threads)")
      ->check(CLI::Range(0, 1024));
  val_fraction_opt_ =
      cmd_->add_option("--val-fraction", val_fraction_, "Fraction of documents for 'val' (0.005)")
          ->check(FiniteRange(0.0, 1.0));
  // (The unsigned options refuse a sign: CLI11 would take "-1" as 2^64 - 1.)
  val_documents_opt_ = cmd_->add_option("--val-documents", val_documents_, "Exactly N documents for 'val'")
                           ->check(FiniteRange(0.0, 9.2e18))
                           ->excludes(val_fraction_opt_);
  cmd_->add_option("--shard-tokens", shard_tokens_, "Tokens per shard before a new one starts (100000000)")
      ->check(FiniteRange(0.0, 9.2e18));
  cmd_->add_option("--text-field", text_field_, "The field of .jsonl objects holding the text (text)");
  cmd_->add_option("--doc-delimiter", delimiter_, "The line between documents in .txt files (<|endoftext|>)");
  cmd_->add_flag("--skip-bad-lines", skip_bad_lines_,
                 "Skip (and count) .jsonl lines without text instead of failing");
  cmd_->add_option("--seed", seed_, "Seed of the validation split (0)")->check(FiniteRange(0.0, 9.2e18));
  cmd_->add_flag("--overwrite", overwrite_,
                 "Rebuild a corpus that is already complete in --out (or replace an existing .bin --out)");
  cmd_->add_flag("--from-llmc", from_llmc_, "Inputs are llm.c token files (.bin): one train shard each");
  cmd_->add_option("--vocab-size", vocab_size_, "--from-llmc: vocabulary size (50257)")
      ->check(CLI::Range(1.0, 4294967296.0));
  eot_opt_ = cmd_->add_option("--eot-id", eot_id_, "--from-llmc: end-of-text token (default vocab size - 1)")
                 ->check(FiniteRange(0.0, 9.2e18));
  cmd_->add_option("--timeout-s", timeout_s_,
                   "Under mpirun: how long a rank waits for the others at a collective before the job "
                   "ends with an error naming the missing ranks (1800)")
      ->check(FiniteRange(1.0, 1e7));
  cmd_->add_option("inputs", inputs_, "Input files or folders")->required();
  auto* coordinator =
      cmd_->add_option("--coordinator", coordinator_,
                       "Lease work units from this coordinator (HOST:PORT) instead of splitting "
                       "them by MPI rank; start any number of such processes");
  cmd_->add_option("--job", job_id_, "--coordinator: the job id (default)")->needs(coordinator);
  cmd_->add_option("--token-file", token_file_,
                   "--coordinator: the shared secret's file (default $KERVAN_TOKEN)")
      ->needs(coordinator);
  cmd_->add_option("--coordinator-timeout-s", coordinator_timeout_s_,
                   "--coordinator: how long to retry an unreachable coordinator (60)")
      ->needs(coordinator)
      ->check(FiniteRange(0.1, 1e7));
}

void PrepareCommand::refuse_outputs_over_inputs() const {
  refuse_output_over_input(out_, "--out", inputs_);
  // And the other way round: an input inside the output folder would be read while it is rebuilt.
  for (const std::string& in : inputs_)
    if (inside(in, out_))
      throw UserError(in + ": an input lies inside --out " + out_ + "; choose another --out");
}

int PrepareCommand::run(const std::string& command_line) const {
  if (from_llmc_) return run_from_llmc(command_line);
  if (out_.ends_with(".bin")) {
    if (tokenizer_opt_->count() && tokenizer_ != "bytes")
      throw UserError("--out " + out_ +
                      ": a .bin output is the legacy llm.c token file, which needs --tokenizer bytes "
                      "(give a folder for a kervan corpus)");
    refuse_outputs_over_inputs();
    return run_prepare_bytes(inputs_, out_, overwrite_);
  }
  return run_corpus(command_line);
}

int PrepareCommand::run_from_llmc(const std::string& command_line) const {
  if (val_fraction_opt_->count() || val_documents_opt_->count())
    throw UserError(
        "--from-llmc puts every document in 'train'; --val-fraction/--val-documents do not apply");
  const std::string name = tokenizer_opt_->count() ? tokenizer_ : "gpt2";
  const uint64_t eot = eot_opt_->count() ? eot_id_ : vocab_size_ - 1;
  if (vocab_size_ == 0 || eot >= vocab_size_) throw UserError("--eot-id must be below --vocab-size");
  const TokenizerIdentity id{name, vocab_size_, eot, name == "gpt2" ? gpt2_vocab_sha256() : ""};
  for (const std::string& f : inputs_) require_file(f, "--from-llmc input");
  refuse_repeated_files(inputs_, "--from-llmc input");
  refuse_outputs_over_inputs();
  const std::string request =
      request_checksum({{"from_llmc", true}, {"tokenizer", {id.name, id.vocab_size, id.eot_id}}}, inputs_);
  const std::unique_ptr<CorpusDir> out = CorpusDir::begin(out_, overwrite_, request);
  if (out->complete()) {
    log_already_complete(out_);
    return 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const CorpusManifest m = wrap_llmc_files(inputs_, out->build_dir(), id, command_line, request);
  out->finish(m);
  log_corpus_summary(m, seconds_since(t0), m.source_bytes(), 0);
  return 0;
}

CorpusOptions PrepareCommand::corpus_options() const {
  CorpusOptions options;
  options.out_dir = out_;
  options.read = {delimiter_, text_field_, skip_bad_lines_};
  options.shard_tokens = shard_tokens_;
  options.seed = seed_;
  options.threads = threads_ > 0 ? threads_ : std::max(1u, std::thread::hardware_concurrency());
  if (const char* ub = std::getenv("KERVAN_PREPARE_UNIT_BYTES"))
    options.unit_bytes = std::stoull(ub);  // tests
  return options;
}

ValRule PrepareCommand::val_rule(const std::vector<TextSource>& sources, const TextReadOptions& read) const {
  if (!val_documents_opt_->count()) return val_rule_for_fraction(val_fraction_);
  spdlog::info("finding the {} validation documents (a first pass over the input)", val_documents_);
  return val_rule_for_count(sources, read, seed_, val_documents_);
}

std::string PrepareCommand::corpus_request(const std::vector<TextSource>& sources,
                                           const TokenizerIdentity& tok) const {
  std::vector<std::string> files;
  for (const TextSource& s : sources) files.push_back(s.path);
  return request_checksum({{"tokenizer", {tok.name, tok.vocab_size, tok.eot_id, tok.sha256}},
                           {"delimiter", delimiter_},
                           {"text_field", text_field_},
                           {"skip_bad_lines", skip_bad_lines_},
                           {"val", val_documents_opt_->count() ? nlohmann::json{"documents", val_documents_}
                                                               : nlohmann::json{"fraction", val_fraction_}},
                           {"seed", seed_},
                           {"shard_tokens", shard_tokens_}},
                          files);
}

int PrepareCommand::run_corpus(const std::string& command_line) const {
  if (!coordinator_.empty()) return run_leased(command_line);
  const auto t0 = std::chrono::steady_clock::now();
  // Under mpirun the ranks meet at three collectives, each bounded by --timeout-s (a stopped or
  // dead rank ends the job with an error naming it instead of hanging it).
  std::unique_ptr<MpiRuntime> mpi;
  std::unique_ptr<Communicator> world;
  const std::unique_ptr<Backend> be = make_cpu_backend();
  if (launched_by_mpi()) {
    mpi = std::make_unique<MpiRuntime>();
    world = mpi->group(0, "prepare", timeout_s_);
  }
  const int rank = mpi ? mpi->world_rank() : 0, ranks = mpi ? mpi->world_size() : 1;

  const DocumentTokenizer tokenizer = DocumentTokenizer::load(tokenizer_);
  std::vector<TextSource> sources = discover_text_sources(inputs_);
  if (sources.empty()) throw UserError("no .txt or .jsonl files in the inputs");

  refuse_outputs_over_inputs();
  const std::string request = corpus_request(sources, tokenizer.identity());
  // One process looks at the output folder (locks it, cleans it, says where the shards go); the
  // others wait for its verdict: 0 build in --out, 1 complete already, 2 build aside (--overwrite).
  std::unique_ptr<CorpusDir> out;
  const auto verdict = [&] { return out->complete() ? 1 : out->replacing() ? 2 : 0; };
  int32_t where = 0;
  if (world) {
    run_on_root_and_share_outcome(*world, *be, [&] {
      out = CorpusDir::begin(out_, overwrite_, request);
      out->shared_with_other_processes();
    });
    Tensor flag = be->empty({1}, DType::I32);
    const int32_t mine = out ? verdict() : 0;
    be->copy_from_host(flag, &mine);
    world->broadcast_async(flag, 0)->wait();
    where = be->item<int32_t>(flag);
  } else {
    out = CorpusDir::begin(out_, overwrite_, request);
    where = verdict();
  }
  if (where == 1) {
    if (rank == 0) log_already_complete(out_);
    return 0;
  }

  CorpusOptions options = corpus_options();
  options.out_dir = where == 2 ? CorpusDir::aside_dir(out_) : out_;
  if (where == 2 && rank == 0)
    spdlog::info("building the new corpus in {}; {} stays as it is until it is complete", options.out_dir, out_);
  const ValRule val = val_rule(sources, options.read);
  CorpusBuilder builder(options, std::move(sources), tokenizer, val);
  const std::vector<size_t> mine = units_of_rank(builder.units().size(), rank, ranks);
  uint64_t my_bytes = 0;
  for (size_t u : mine) my_bytes += builder.units()[u].bytes;
  const std::string label = mpi ? fmt::format("rank {}: ", rank) : "";
  spdlog::info("{}{} input files, {:.1f} MB, {} work units ({} here), tokenizer {}, {} threads", label,
               builder.sources().size(), my_bytes / 1e6, builder.units().size(), mine.size(),
               tokenizer.identity().name, options.threads);
  std::unique_ptr<Progress> progress;
  const BuildStats stats = builder.build(mine, [&](const BuildProgress& p) {
    if (!progress)
      progress = std::make_unique<Progress>(my_bytes, p.bytes, label, !mpi && Progress::stderr_is_terminal());
    progress->update(p.bytes, p.documents);
  });
  if (progress) progress->finish();
  if (stats.kept_units)
    spdlog::info("{}kept {} shards ({} work units) from an earlier run", label, stats.kept_shards,
                 stats.kept_units);
  // Input bytes tokenized and shards kept, over all ranks; rank 0 waits here for every rank's units.
  double all_counts[2] = {static_cast<double>(stats.bytes), static_cast<double>(stats.kept_shards)};
  if (world) {
    spdlog::info("{}{} documents, {} tokens, {:.1f} MB in {:.1f} s", label, stats.documents, stats.tokens,
                 stats.bytes / 1e6, seconds_since(t0));
    Tensor counts = be->empty({2}, DType::F64);  // exact for counts below 2^53
    be->copy_from_host(counts, all_counts);
    world->all_reduce(counts, ReduceOp::Sum);
    be->copy_to_host(all_counts, counts);
  }

  // Rank 0 writes the manifest; its failure is every rank's (each exits with the same error).
  const auto finish = [&] {
    CorpusManifest m = builder.manifest(command_line);
    m.request = request;
    check_corpus_contents(m, val);
    out->finish(m);
    log_corpus_summary(m, seconds_since(t0), static_cast<uint64_t>(all_counts[0]),
                       static_cast<uint64_t>(all_counts[1]));
  };
  if (world)
    run_on_root_and_share_outcome(*world, *be, finish);
  else
    finish();
  return 0;
}

int run_prepare_bytes(const std::vector<std::string>& inputs, const std::string& out, bool overwrite) {
  std::error_code ec;
  if (std::filesystem::exists(out, ec) && !overwrite)
    throw UserError(out +
                    ": --out exists; kervan does not replace a file it did not write unless asked "
                    "(--overwrite replaces it)");
  refuse_repeated_files(inputs, "input file");
  std::vector<uint16_t> tokens;
  for (const std::string& path : inputs) {
    require_file(path, "input file (a .bin output takes files, not folders)");
    for (const char* ext : {".gz", ".zst", ".jsonl"})
      if (path.ends_with(ext))
        throw UserError(path + ": a .bin output takes plain text, one token per byte; a " + std::string(ext) +
                        " file would be stored as its raw bytes (give a folder as --out for a kervan corpus, "
                        "which reads it)");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UserError(path + ": cannot open input file");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw UserError(path + ": read failed");
    if (text.empty()) throw UserError(path + ": input file is empty");
    for (unsigned char c : text) tokens.push_back(c);
  }
  write_llmc_token_file(out, tokens);
  spdlog::info("wrote {} ({} byte tokens from {} files)", out, tokens.size(), inputs.size());
  return 0;
}

}  // namespace kervan
