#include "launcher/training_data.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/paths.h"
#include "core/model/recurrent_config.h"
#include "launcher/word_flags.h"

namespace kervan {

namespace {

// The family's special tokens after the corpora's tokenizer (GPT: none, any source).
SpecialTokens family_specials(const RunConfig& cfg, const std::vector<DataLoader::Source>& sources) {
  if (cfg.arch == "gpt" || is_recurrent_arch(cfg.arch))
    return SpecialTokens::make("gpt", cfg.model.vocab_size, -1, cfg.model.vocab_size);
  for (const auto& s : sources)
    if (!s.tokens->is_corpus())
      throw UserError(
          s.tokens->path() + ": an llm.c token file does not name its tokenizer, which " + cfg.arch +
          "'s special tokens follow; prepare a kervan corpus (kervan prepare) for model.arch = \"" +
          cfg.arch + "\"");
  const TokenizerIdentity& t = sources[0].tokens->tokenizer();
  try {
    return SpecialTokens::make(cfg.arch, static_cast<int64_t>(t.vocab_size), static_cast<int64_t>(t.eot_id),
                               cfg.model.vocab_size);
  } catch (const UserError& e) {
    throw UserError(cfg.file + ": " + e.what() + " (tokenizer '" + t.name + "' of " +
                    sources[0].tokens->path() + ")");
  }
}

}  // namespace

TrainingData open_training_data(const RunConfig& cfg, Verify verify) {
  return open_training_data(cfg, cfg.data.paths, [&](const std::string& path, const std::string& split) {
    return std::make_unique<TokenSource>(path, split, cfg.model.vocab_size, verify);
  });
}

TrainingData open_training_data(const RunConfig& cfg, const std::vector<std::string>& paths,
                                const OpenSource& open) {
  const auto& d = cfg.data;
  if (!d.weights.empty() && d.weights.size() != paths.size())
    throw UserError(cfg.file + ": data.weights needs one weight per corpus the coordinator serves (" +
                    std::to_string(paths.size()) + "), got " + std::to_string(d.weights.size()));
  std::vector<DataLoader::Source> sources;
  for (size_t i = 0; i < paths.size(); ++i) {
    auto tokens = open(paths[i], "train");
    // Without weights, sources are drawn in proportion to their tokens (plain concatenation).
    const double weight = d.weights.empty() ? static_cast<double>(tokens->num_tokens()) : d.weights[i];
    sources.push_back({std::move(tokens), weight});
  }
  // data.tokenizer decodes the samples: another tokenizer than the corpus's would print wrong text.
  if (!d.tokenizer.empty() && d.tokenizer != "none")
    for (const auto& s : sources)
      if (s.tokens->is_corpus() && s.tokens->tokenizer().name != d.tokenizer &&
          !same_file(s.tokens->tokenizer().name, d.tokenizer))
        throw UserError(cfg.file + ": data.tokenizer '" + d.tokenizer + "' is not the tokenizer " +
                        s.tokens->path() + " was made with ('" + s.tokens->tokenizer().name +
                        "'); leave data.tokenizer unset (the corpus's is used), or make them agree");
  TrainingData out;
  out.tokenizer = d.tokenizer;
  if (out.tokenizer.empty()) {
    out.tokenizer = "none";
    for (const auto& s : sources)
      if (s.tokens->is_corpus()) {
        out.tokenizer = s.tokens->tokenizer().name;
        break;
      }
  }
  // Blended corpora must share one tokenizer: same name, vocabulary and file hashes (llm.c files
  // do not say what made them).
  const TokenSource* first_corpus = nullptr;
  for (const auto& s : sources) {
    if (!s.tokens->is_corpus()) continue;
    if (!first_corpus) first_corpus = s.tokens.get();
    if (!(s.tokens->tokenizer() == first_corpus->tokenizer()))
      throw UserError(s.tokens->path() + ": made with tokenizer '" + s.tokens->tokenizer().name + "' (" +
                      std::to_string(s.tokens->tokenizer().vocab_size) + " tokens), but " +
                      first_corpus->path() + " with '" + first_corpus->tokenizer().name + "' (" +
                      std::to_string(first_corpus->tokenizer().vocab_size) +
                      " tokens); blended corpora must share one tokenizer");
  }

  out.specials = family_specials(cfg, sources);
  std::vector<uint8_t> word_flags;
  if (cfg.data.whole_word_masking == 1)
    word_flags = tokenizer_word_flags(sources[0].tokens->tokenizer().name, out.specials.base_vocab);
  const int64_t window = TrainingBatches::loader_seq_len(cfg);
  auto batches = [&](std::unique_ptr<DataLoader> loader, uint64_t seed) {
    return std::make_unique<TrainingBatches>(cfg, std::move(loader), out.specials, seed, word_flags);
  };

  if (cfg.train.eval_every > 0) {
    double total = 0;
    for (size_t i = 0; i < sources.size(); ++i) {
      const DataLoader::Source& s = sources[i];
      if (!s.tokens->is_corpus() || !s.tokens->has_split("val")) continue;
      std::vector<DataLoader::Source> one;
      one.push_back({open(paths[i], "val"), 1.0});
      std::unique_ptr<DataLoader> loader;
      try {
        loader = std::make_unique<DataLoader>(std::move(one), window, 0, /*shuffle=*/false);
      } catch (const UserError& e) {
        throw UserError(
            std::string("the validation split ('val') of ") + e.what() +
            " (prepare a larger one with --val-documents or --val-fraction, or set train.eval_every = 0)");
      }
      out.val.push_back({s.tokens->path(), s.weight, batches(std::move(loader), 0)});
      total += s.weight;
    }
    if (out.val.empty())
      throw UserError(
          cfg.file + ": train.eval_every needs a validation split, and " +
          (sources.size() == 1 ? sources[0].tokens->path() + " has" : std::string("no data.path has")) +
          " none (prepare it with --val-fraction, or set train.eval_every = 0)");
    for (ValidationSet& v : out.val) v.weight /= total;
  }
  const auto seed = static_cast<uint64_t>(cfg.train.seed);
  auto loader = std::make_unique<DataLoader>(std::move(sources), window, seed);
  loader->set_read_ahead(d.read_ahead);  // only sources served over the network read ahead
  out.train = batches(std::move(loader), seed);
  return out;
}

std::string TrainingData::describe() const {
  std::string s;
  const DataLoader& loader = train->loader();
  for (int d = 0; d < loader.num_sources(); ++d)
    s += fmt::format("{}{} ({:.1f}M tokens, {} windows, weight {:.3f})", d ? "; " : "",
                     loader.source(d).path(), loader.source(d).num_tokens() / 1e6, loader.num_windows(d),
                     loader.weight(d));
  for (size_t v = 0; v < val.size(); ++v)
    s += fmt::format("{}{} ({} windows)", v ? ", " : "; validation: ", val[v].path,
                     val[v].batches->loader().num_windows(0));
  return s + "; tokenizer " + tokenizer;
}

}  // namespace kervan
