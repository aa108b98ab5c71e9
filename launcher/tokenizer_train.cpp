#include "launcher/tokenizer_train.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "core/paths.h"
#include "datasets/tokenizer/bpe_trainer.h"
#include "datasets/tokenizer/bpe_word_counts.h"
#include "datasets/tokenizer/gpt2_vocab_writer.h"

namespace kervan {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Every input must be a readable file; checked up front so a typo in the last one costs nothing.
void check_inputs(const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  for (const std::string& path : inputs) {
    if (fs::is_directory(path)) throw UserError(path + ": is a folder, expected a text file");
    require_file(path, "input file");
    for (const char* ext : {".gz", ".zst", ".jsonl", ".bin", ".kvs"})
      if (path.ends_with(ext))
        throw UserError(path + ": tokenizer train reads plain text; a " + std::string(ext) +
                        " file would be learned as raw bytes (decompress it, or extract its text)");
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw_io_error(path, "cannot open input file", errno);
    std::fclose(f);
  }
  refuse_repeated_files(inputs, "input file");
}

}  // namespace

int run_tokenizer_train(const TokenizerTrainOptions& opts) {
  if (opts.vocab_size < 257)
    throw UserError("--vocab-size " + std::to_string(opts.vocab_size) +
                    ": must be at least 257 (256 bytes + <|endoftext|>)");
  if (opts.vocab_size > (int64_t{1} << 31))
    throw UserError("--vocab-size " + std::to_string(opts.vocab_size) + ": must be at most 2^31");
  if (opts.min_frequency < 1)
    throw UserError("--min-frequency " + std::to_string(opts.min_frequency) + ": must be at least 1");
  if (opts.inputs.empty()) throw UserError("tokenizer train: no input files");
  check_inputs(opts.inputs);
  check_vocab_out_dir(opts.out);
  const int threads =
      opts.threads > 0 ? opts.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

  auto t0 = std::chrono::steady_clock::now();
  BpeWordCounter counter(threads);
  for (const std::string& path : opts.inputs) counter.add_file(path);
  if (counter.pieces() == 0) {
    std::string names;
    for (const std::string& p : opts.inputs) names += (names.empty() ? "" : ", ") + p;
    throw UserError(names + ": no text to learn from (empty input)");
  }
  const std::vector<WordCount> words = counter.sorted();
  spdlog::info("counted {} pieces ({} distinct) in {:.1f} MB from {} file(s) in {:.2f} s ({} threads)",
               counter.pieces(), words.size(), counter.bytes() / 1e6, opts.inputs.size(), seconds_since(t0),
               threads);

  t0 = std::chrono::steady_clock::now();
  const auto max_tokens = static_cast<size_t>(opts.vocab_size - 1);  // the last id is <|endoftext|>
  const BpeTrainResult r =
      learn_bpe(words, max_tokens, static_cast<uint64_t>(opts.min_frequency), [&](const BpeTrainResult& p) {
        if (p.merges.size() % 5000 == 0)
          spdlog::info("{} merges, last \"{}\" + \"{}\" (count {}), {:.1f} s", p.merges.size(),
                       p.merges.back().left, p.merges.back().right, p.merges.back().count, seconds_since(t0));
      });
  spdlog::info("learned {} merges ({} tokens) in {:.2f} s", r.merges.size(), r.tokens, seconds_since(t0));
  if (r.exhausted)
    spdlog::info(
        "the corpus ran out of pairs occurring at least {} times: the vocabulary has {} tokens, not {}",
        opts.min_frequency, r.tokens + 1, opts.vocab_size);

  write_gpt2_vocab(opts.out, r.merges);
  spdlog::info("wrote {}/encoder.json ({} tokens, the last <|endoftext|>) and {}/vocab.bpe", opts.out,
               r.tokens + 1, opts.out);
  return 0;
}

}  // namespace kervan
