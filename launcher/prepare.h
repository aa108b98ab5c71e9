#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace kervan {

struct CorpusManifest;
struct CorpusOptions;
struct TextReadOptions;
struct TextSource;
struct TokenizerIdentity;
struct ValRule;

// `kervan prepare`: text files -> a kervan corpus (datasets/corpus_writer.h), on N threads and,
// under mpirun, split over the ranks by work unit, or, with --coordinator, over any number of
// processes leasing work units from a coordinator (prepare_leased.cpp); or `--from-llmc`: llm.c
// token files -> a corpus; or, when --out ends in .bin, the legacy llm.c token file of byte tokens.
// Registers itself on the app; main() asks selected() after parsing and then calls run().
class PrepareCommand {
 public:
  explicit PrepareCommand(CLI::App& app);
  PrepareCommand(const PrepareCommand&) = delete;
  PrepareCommand& operator=(const PrepareCommand&) = delete;

  bool selected() const { return cmd_->parsed(); }
  // `command_line` is recorded in the manifest as created_by.
  int run(const std::string& command_line) const;

 private:
  int run_corpus(const std::string& command_line) const;
  int run_leased(const std::string& command_line) const;
  CorpusOptions corpus_options() const;
  ValRule val_rule(const std::vector<TextSource>& sources, const TextReadOptions& read) const;
  int run_from_llmc(const std::string& command_line) const;
  // --out may not be an input or lie inside an input folder, nor an input inside --out.
  void refuse_outputs_over_inputs() const;
  // CorpusManifest::request of a text corpus: the options that shape it and its input files.
  std::string corpus_request(const std::vector<TextSource>& sources, const TokenizerIdentity& tok) const;

  CLI::App* cmd_;
  CLI::Option* tokenizer_opt_;
  CLI::Option* val_fraction_opt_;
  CLI::Option* val_documents_opt_;
  CLI::Option* eot_opt_;
  std::string out_, tokenizer_ = "gpt2", text_field_ = "text", delimiter_ = "<|endoftext|>";
  std::vector<std::string> inputs_;
  int threads_ = 0;
  double timeout_s_ = 1800;
  double val_fraction_ = 0.005;
  uint64_t val_documents_ = 0, shard_tokens_ = 100'000'000, seed_ = 0, vocab_size_ = 50257, eot_id_ = 0;
  bool skip_bad_lines_ = false, overwrite_ = false, from_llmc_ = false;
  std::string coordinator_, job_id_ = "default", token_file_;  // --coordinator: leased work units
  double coordinator_timeout_s_ = 60;
};

// The checks and the closing log line of a prepared corpus (shared by every way of preparing one).
void check_corpus_contents(const CorpusManifest& m, const ValRule& val);
void log_corpus_summary(const CorpusManifest& m, double seconds, uint64_t built_bytes, size_t kept_shards);

// `kervan prepare --tokenizer bytes --out X.bin FILE...`: the legacy llm.c token file (one token
// per byte, vocabulary 256), written atomically.
// An existing `out` is refused unless `overwrite`.
int run_prepare_bytes(const std::vector<std::string>& inputs, const std::string& out, bool overwrite);

}  // namespace kervan
