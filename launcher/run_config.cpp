#include "launcher/run_config.h"

#include <cmath>
#include <map>
#include <set>
#include <toml++/toml.h>

#include "core/error.h"

namespace kervan {

namespace {

// Reads typed values out of a parsed TOML document, remembering which keys it consumed so that
// anything left over can be reported as unknown.
class TomlReader {
 public:
  TomlReader(toml::table& root, std::string file, std::set<std::string> overridden)
      : root_(root), file_(std::move(file)), overridden_(std::move(overridden)) {}

  template <typename T>
  bool get(const std::string& section, const std::string& key, T& out) {
    const std::string full = section + "." + key;
    seen_.insert(full);
    toml::node* node = root_.at_path(full).node();
    if (!node) return false;
    if constexpr (std::is_same_v<T, std::string>) {
      if (auto v = node->value_exact<std::string>()) return out = *v, true;
      type_error(full, "a string");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (auto v = node->value<double>()) return out = static_cast<T>(*v), true;
      type_error(full, "a number");
    } else {
      if (auto v = node->value_exact<int64_t>()) return out = static_cast<T>(*v), true;
      type_error(full, "an integer");
    }
    return false;
  }

  // A list of T, or a single T taken as a list of one.
  template <typename T>
  bool get_list(const std::string& section, const std::string& key, std::vector<T>& out) {
    const std::string full = section + "." + key;
    toml::node* node = root_.at_path(full).node();
    if (!node || !node->is_array()) {
      T one{};
      if (!get(section, key, one)) return false;
      out = {one};
      return true;
    }
    seen_.insert(full);
    out.clear();
    for (toml::node& item : *node->as_array()) {
      if constexpr (std::is_same_v<T, std::string>) {
        if (auto v = item.value_exact<std::string>()) out.push_back(*v);
        else type_error(full, "a string or a list of strings");
      } else {
        if (auto v = item.value<double>()) out.push_back(static_cast<T>(*v));
        else type_error(full, "a number or a list of numbers");
      }
    }
    return true;
  }

  // Every key in the document must have been read by get().
  void reject_unknown() const {
    for (auto& [section, node] : root_) {
      const std::string s(section.str());
      const toml::table* t = node.as_table();
      if (!t) throw UserError(where(s) + ": '" + s + "' is not a known section");
      for (auto& [key, value] : *t) {
        const std::string full = s + "." + std::string(key.str());
        if (!seen_.count(full)) throw UserError(where(full) + ": unknown key '" + full + "'");
      }
    }
  }

  std::string where(const std::string& key) const {
    return overridden_.count(key) ? "--set " + key : file_;
  }

 private:
  [[noreturn]] void type_error(const std::string& key, const char* want) const {
    throw UserError(where(key) + ": " + key + " must be " + want);
  }

  toml::table& root_;
  std::string file_;
  std::set<std::string> overridden_;
  std::set<std::string> seen_;
};

// "section.key=value" -> root[section][key] = value
std::string apply_override(toml::table& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  const auto dot = assignment.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq)
    throw UserError("--set " + assignment + ": expected section.key=value");
  const std::string section = assignment.substr(0, dot), key = assignment.substr(dot + 1, eq - dot - 1);
  const std::string value = assignment.substr(eq + 1);
  toml::node_view existing = root[section];
  if (!existing) root.insert(section, toml::table{});
  toml::table* t = root[section].as_table();
  if (!t) throw UserError("--set " + assignment + ": '" + section + "' is not a section");
  try {
    toml::table parsed = toml::parse("v = " + value);
    t->insert_or_assign(key, *parsed.get("v"));
  } catch (const toml::parse_error&) {
    t->insert_or_assign(key, value);  // bare words are strings: --set data.path=/x/y.bin
  }
  return section + "." + key;
}

void require_positive(const TomlReader& r, const std::string& key, int64_t v) {
  if (v <= 0) throw UserError(r.where(key) + ": " + key + " must be positive, got " + std::to_string(v));
}

}  // namespace

LrSchedule RunConfig::schedule() const {
  LrSchedule s;
  s.kind = parse_schedule_kind(train.schedule);
  s.max_lr = train.lr;
  s.min_lr = train.min_lr;
  s.warmup_steps = train.warmup_steps;
  s.total_steps = train.steps;
  s.decay_steps = train.decay_steps;
  return s;
}

std::string RunConfig::canonical() const {
  std::string s;
  auto add = [&s](const char* key, const auto& v) {
    s += key;
    s += '=';
    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string>)
      s += v;
    else
      s += std::to_string(v);
    s += '\n';
  };
  add("model.n_layer", model.n_layer);
  add("model.n_head", model.n_head);
  add("model.d_model", model.d_model);
  add("model.vocab_size", model.vocab_size);
  add("model.max_seq_len", model.max_seq_len);
  for (size_t i = 0; i < data.paths.size(); ++i) {
    add("data.path", data.paths[i]);
    add("data.weight", data.weights.empty() ? 1.0 : data.weights[i]);
  }
  add("train.steps", train.steps);
  add("train.micro_batch", train.micro_batch);
  add("train.seq_len", train.seq_len);
  add("train.grad_accum", train.grad_accum);
  add("train.seed", train.seed);
  add("train.lr", train.lr);
  add("train.min_lr", train.min_lr);
  add("train.warmup_steps", train.warmup_steps);
  add("train.schedule", train.schedule);
  add("train.decay_steps", train.decay_steps);
  add("train.weight_decay", train.weight_decay);
  add("train.beta1", train.beta1);
  add("train.beta2", train.beta2);
  add("train.eps", train.eps);
  add("train.grad_clip", train.grad_clip);
  add("data.tokenizer", data.tokenizer);
  add("train.eval_every", train.eval_every);
  add("train.eval_batches", train.eval_batches);
  add("sample.tokens", sample.tokens);
  add("sample.prompt", sample.prompt);
  add("sample.temperature", sample.temperature);
  add("sample.top_k", sample.top_k);
  add("parallel.tp", parallel.tp);
  add("parallel.bucket_mb", parallel.bucket_mb);
  add("parallel.zero", parallel.zero);
  return s;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    std::string msg(e.description());
    if (msg.find("could not be opened") != std::string::npos || msg.find("File could not") != std::string::npos)
      throw UserError(path + ": cannot open config file");
    throw UserError(path + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column) +
                    ": invalid TOML: " + msg);
  }
  std::set<std::string> overridden;
  for (const std::string& o : overrides) overridden.insert(apply_override(root, o));
  TomlReader r(root, path, overridden);
  RunConfig c;
  c.file = path;

  if (r.get("model", "preset", c.preset)) {
    try {
      c.model = gpt_preset(c.preset);
    } catch (const UserError& e) {
      throw UserError(r.where("model.preset") + ": " + e.what());
    }
  }
  bool has_max_seq = !c.preset.empty();
  r.get("model", "n_layer", c.model.n_layer);
  r.get("model", "n_head", c.model.n_head);
  r.get("model", "d_model", c.model.d_model);
  r.get("model", "vocab_size", c.model.vocab_size);
  has_max_seq |= r.get("model", "max_seq_len", c.model.max_seq_len);

  r.get_list("data", "path", c.data.paths);
  r.get_list("data", "weights", c.data.weights);
  r.get("data", "tokenizer", c.data.tokenizer);

  auto& t = c.train;
  r.get("train", "steps", t.steps);
  r.get("train", "micro_batch", t.micro_batch);
  r.get("train", "seq_len", t.seq_len);
  r.get("train", "grad_accum", t.grad_accum);
  r.get("train", "seed", t.seed);
  r.get("train", "lr", t.lr);
  if (!r.get("train", "min_lr", t.min_lr)) t.min_lr = t.lr / 10;
  r.get("train", "warmup_steps", t.warmup_steps);
  r.get("train", "schedule", t.schedule);
  r.get("train", "decay_steps", t.decay_steps);
  r.get("train", "weight_decay", t.weight_decay);
  r.get("train", "beta1", t.beta1);
  r.get("train", "beta2", t.beta2);
  r.get("train", "eps", t.eps);
  r.get("train", "grad_clip", t.grad_clip);
  r.get("train", "threads", t.threads);
  r.get("train", "eval_every", t.eval_every);
  r.get("train", "eval_batches", t.eval_batches);

  r.get("parallel", "tp", c.parallel.tp);
  r.get("parallel", "bucket_mb", c.parallel.bucket_mb);
  r.get("parallel", "collective_timeout_s", c.parallel.collective_timeout_s);
  r.get("parallel", "zero", c.parallel.zero);

  r.get("log", "metrics_file", c.log.metrics_file);
  r.get("log", "every", c.log.every);

  r.get("sample", "tokens", c.sample.tokens);
  r.get("sample", "prompt", c.sample.prompt);
  r.get("sample", "temperature", c.sample.temperature);
  r.get("sample", "top_k", c.sample.top_k);

  r.reject_unknown();

  // Validation, naming the key that is wrong.
  if (!has_max_seq) c.model.max_seq_len = t.seq_len;
  try {
    c.model.validate();
  } catch (const UserError& e) {
    throw UserError(path + ": " + e.what());
  }
  require_positive(r, "train.steps", t.steps);
  require_positive(r, "train.micro_batch", t.micro_batch);
  require_positive(r, "train.seq_len", t.seq_len);
  require_positive(r, "train.grad_accum", t.grad_accum);
  require_positive(r, "log.every", c.log.every);
  if (t.seq_len > c.model.max_seq_len)
    throw UserError(r.where("train.seq_len") + ": train.seq_len (" + std::to_string(t.seq_len) +
                    ") exceeds model.max_seq_len (" + std::to_string(c.model.max_seq_len) + ")");
  if (c.data.paths.empty()) throw UserError(path + ": data.path is required");
  for (const std::string& p : c.data.paths)
    if (p.empty()) throw UserError(r.where("data.path") + ": data.path is required (an entry is empty)");
  if (!c.data.weights.empty() && c.data.weights.size() != c.data.paths.size())
    throw UserError(r.where("data.weights") + ": data.weights needs one weight per data.path (" +
                    std::to_string(c.data.paths.size()) + "), got " + std::to_string(c.data.weights.size()));
  for (const double w : c.data.weights)
    if (!(w > 0) || !std::isfinite(w))
      throw UserError(r.where("data.weights") + ": data.weights must all be positive and finite");
  if (t.eval_every < 0) throw UserError(r.where("train.eval_every") + ": train.eval_every must be >= 0");
  if (t.eval_batches < 1) throw UserError(r.where("train.eval_batches") + ": train.eval_batches must be >= 1");
  if (c.parallel.zero != 0 && c.parallel.zero != 1)
    throw UserError(r.where("parallel.zero") + ": parallel.zero must be 0 or 1 (ZeRO-1), got " +
                    std::to_string(c.parallel.zero));
  if (c.parallel.tp < 1) throw UserError(r.where("parallel.tp") + ": parallel.tp must be >= 1");
  if (!(c.parallel.bucket_mb > 0)) throw UserError(r.where("parallel.bucket_mb") + ": parallel.bucket_mb must be > 0");
  if (!(c.parallel.collective_timeout_s > 0))
    throw UserError(r.where("parallel.collective_timeout_s") + ": parallel.collective_timeout_s must be > 0");
  if (t.threads < 0) throw UserError(r.where("train.threads") + ": train.threads must be >= 0");
  if (t.warmup_steps < 0 || t.decay_steps < 0 || t.decay_steps > t.steps)
    throw UserError(path + ": train.warmup_steps and train.decay_steps must lie in [0, train.steps]");
  if (!(t.lr > 0) || t.min_lr < 0 || t.min_lr > t.lr)
    throw UserError(r.where("train.lr") + ": need 0 <= train.min_lr <= train.lr and train.lr > 0");
  try {
    parse_schedule_kind(t.schedule);
  } catch (const UserError& e) {
    throw UserError(r.where("train.schedule") + ": " + e.what());
  }
  return c;
}

}  // namespace kervan
