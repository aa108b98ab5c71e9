#include "launcher/tokenizer_cmd.h"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/paths.h"
#include "datasets/tokenizer/tokenizer_files.h"
#include "launcher/tokenizer_train.h"

namespace kervan {

namespace {

// The whole of FILE, or of stdin for "-".
std::string read_input(const std::string& path) {
  if (path != "-") require_file(path, "input file");
  FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (!f) throw_io_error(path, "cannot open input file", errno);
  std::string data;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) data.append(buf, n);
  const bool failed = std::ferror(f);
  const int err = errno;
  if (f != stdin) std::fclose(f);
  if (failed) throw_io_error(path, "read failed", err ? err : EIO);
  return data;
}

void write_all(const std::string& data) {
  if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size() || std::fflush(stdout) != 0)
    throw_io_error("standard output", "write failed (the output is incomplete)", errno ? errno : EIO);
}

int run_encode(const BpeTokenizer& tok, const std::string& input, bool allow_special, int threads) {
  const std::vector<uint32_t> ids = tok.encode(read_input(input), allow_special, threads);
  std::string out;
  out.reserve(ids.size() * 6);
  char buf[16];
  for (const uint32_t id : ids) {
    char* end = std::to_chars(buf, buf + sizeof(buf), id).ptr;
    *end++ = '\n';
    out.append(buf, end);
  }
  write_all(out);
  return 0;
}

int run_decode(const BpeTokenizer& tok, const std::string& input) {
  const std::string text = read_input(input);
  std::vector<uint32_t> ids;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    uint32_t id = 0;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), id);
    const std::string where = input + ":" + std::to_string(line_no) + ": ";
    if (ec != std::errc() || end != line.data() + line.size())
      throw UserError(where + "expected one token id per line, got \"" + std::string(line.substr(0, 40)) +
                      "\"");
    if (!tok.has_id(id))
      throw UserError(where + "token id " + std::to_string(id) + " is not in the vocabulary (" +
                      std::to_string(tok.vocab_size()) + " tokens)");
    ids.push_back(id);
  }
  write_all(tok.decode(ids));
  return 0;
}

int run_bench(const BpeTokenizer& tok, const std::string& name, const std::string& input, int threads,
              int reps) {
  const std::string text = read_input(input);
  if (text.empty()) throw UserError(input + ": empty file, nothing to time");
  double best = 1e300;
  size_t tokens = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    tokens = tok.encode(text, false, threads).size();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  nlohmann::json j = {{"bench", "tokenizer"},
                      {"impl", "kervan"},
                      {"tokenizer", name},
                      {"file", input},
                      {"bytes", text.size()},
                      {"tokens", tokens},
                      {"threads", threads},
                      {"seconds", best},
                      {"mb_per_s", text.size() / best / 1e6},
                      {"tokens_per_s", tokens / best}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

TokenizerCommand::TokenizerCommand(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("tokenizer", "GPT-2 byte-level BPE: encode / decode text (ids one per line), train");
  cmd->require_subcommand(1);
  const char* tok_help =
      "gpt2 (installed by scripts/get-tokenizer.sh gpt2) or a folder with encoder.json + vocab.bpe";
  encode_ = cmd->add_subcommand("encode", "Text -> token ids, one per line");
  encode_->add_option("--tokenizer", tokenizer_, tok_help);
  encode_->add_flag("--allow-special", allow_special_,
                    "Encode <|endoftext|> in the text as the special token");
  encode_->add_option("--threads", threads_, "Threads (the ids do not depend on it)")
      ->check(CLI::Range(1, 1024));
  encode_->add_option("input", input_, "Text file, or - for standard input")->required();
  decode_ = cmd->add_subcommand("decode", "Token ids, one per line -> text");
  decode_->add_option("--tokenizer", tokenizer_, tok_help);
  decode_->add_option("input", input_, "Id file, or - for standard input")->required();
  bench_ = cmd->add_subcommand("bench", "Encoding speed on a text file (prints one JSON line)");
  bench_->add_option("--tokenizer", tokenizer_, tok_help);
  bench_->add_option("--threads", threads_, "Threads")->check(CLI::Range(1, 1024));
  bench_->add_option("--reps", reps_, "Timed repetitions (best is reported)")->check(CLI::Range(1, 1000));
  bench_->add_option("input", input_, "Text file")->required();
  train_ =
      cmd->add_subcommand("train", "Learn a GPT-2 style BPE vocabulary: writes OUT/encoder.json + vocab.bpe");
  train_
      ->add_option("--vocab-size", vocab_size_, "Tokens in all: 256 bytes + merges + <|endoftext|> (>= 257)")
      ->required();
  train_->add_option("--out", out_, "Folder to create (absent or empty)")->required();
  train_->add_option("--threads", train_threads_, "Counting threads (default: one per core; same result)")
      ->check(CLI::Range(1, 1024));
  train_->add_option("--min-frequency", min_frequency_,
                     "Pairs seen fewer times are never merged (default 2)");
  train_->add_option("inputs", inputs_, "Text files (<|endoftext|> in them separates documents)")->required();
}

int TokenizerCommand::run() const {
  if (*train_) return run_tokenizer_train({inputs_, out_, vocab_size_, train_threads_, min_frequency_});
  if (input_ != "-") require_file(input_, "input file");  // before the (slower) tokenizer load
  const BpeTokenizer tok = load_bpe_tokenizer(tokenizer_);
  if (*encode_) return run_encode(tok, input_, allow_special_, threads_);
  if (*decode_) return run_decode(tok, input_);
  return run_bench(tok, tokenizer_, input_, threads_, reps_);
}

}  // namespace kervan
