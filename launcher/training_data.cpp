#include "launcher/training_data.h"

#include <fmt/format.h>

#include "core/error.h"

namespace kervan {

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

  if (cfg.train.eval_every > 0) {
    double total = 0;
    for (size_t i = 0; i < sources.size(); ++i) {
      const DataLoader::Source& s = sources[i];
      if (!s.tokens->is_corpus() || !s.tokens->has_split("val")) continue;
      std::vector<DataLoader::Source> one;
      one.push_back({open(paths[i], "val"), 1.0});
      out.val.push_back(
          {s.tokens->path(), s.weight,
           std::make_unique<DataLoader>(std::move(one), cfg.train.seq_len, 0, /*shuffle=*/false)});
      total += s.weight;
    }
    if (out.val.empty())
      throw UserError(
          cfg.file + ": train.eval_every needs a validation split, and " +
          (sources.size() == 1 ? sources[0].tokens->path() + " has" : std::string("no data.path has")) +
          " none (prepare it with --val-fraction, or set train.eval_every = 0)");
    for (ValidationSet& v : out.val) v.weight /= total;
  }
  out.train = std::make_unique<DataLoader>(std::move(sources), cfg.train.seq_len,
                                           static_cast<uint64_t>(cfg.train.seed));
  out.train->set_read_ahead(d.read_ahead);  // only sources served over the network read ahead
  return out;
}

std::string TrainingData::describe() const {
  std::string s;
  for (int d = 0; d < train->num_sources(); ++d)
    s += fmt::format("{}{} ({:.1f}M tokens, {} windows, weight {:.3f})", d ? "; " : "",
                     train->source(d).path(), train->source(d).num_tokens() / 1e6, train->num_windows(d),
                     train->weight(d));
  for (size_t v = 0; v < val.size(); ++v)
    s += fmt::format("{}{} ({} windows)", v ? ", " : "; validation: ", val[v].path,
                     val[v].loader->num_windows(0));
  return s + "; tokenizer " + tokenizer;
}

}  // namespace kervan
