#include "launcher/run_config.h"

#include <filesystem>

#include <toml++/toml.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "core/backends/backends.h"
#include "core/error.h"
#include "core/model/recurrent_config.h"
#include "core/paths.h"
#include "launcher/config_keys.h"
#include "launcher/model_setup.h"

namespace kervan {

namespace {

// Reads the keys of config_keys() out of a parsed TOML document into a RunConfig, checking each
// value's type and bounds where it is read, and remembering where each value came from.
class TomlReader {
 public:
  TomlReader(toml::table& root, std::string file, std::set<std::string> overridden)
      : root_(root), file_(std::move(file)), overridden_(std::move(overridden)) {}

  // Reads `k` into its field when the document has it; returns whether it did.
  bool read(const ConfigKey& k, RunConfig& c) {
    const std::string key = k.key;
    seen_.insert(key);
    toml::node* node = root_.at_path(key).node();
    if (!node) return false;
    std::visit([&](auto* field) { assign(k, *node, *field); }, k.field(c));
    c.origin[key] = overridden_.count(key) ? "--set" : "file";
    return true;
  }

  // Every key in the document must have been read.
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

  std::string where(const std::string& key) const { return overridden_.count(key) ? "--set " + key : file_; }

 private:
  [[noreturn]] void type_error(const ConfigKey& k, const char* want) const {
    throw UserError(where(k.key) + ": " + k.key + " must be " + want);
  }
  double checked(const ConfigKey& k, double v) const {
    if (!k.bounds.contains(v))
      throw UserError(where(k.key) + ": " + k.key + " must be " + k.bounds.describe() + ", got " + number(v));
    return v;
  }
  static std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
  }
  double number_of(const ConfigKey& k, const toml::node& n, const char* want) const {
    if (auto v = n.value<double>()) {
      if (!std::isfinite(*v))
        throw UserError(where(k.key) + ": " + k.key + " must be finite, got " + number(*v));
      return checked(k, *v);
    }
    type_error(k, want);
  }
  template <typename Int>
  void assign_int(const ConfigKey& k, const toml::node& n, Int& out) const {
    const auto v = n.value_exact<int64_t>();
    if (!v) type_error(k, "an integer");
    // Bounds are checked on the 64-bit value, before it is narrowed to the field.
    checked(k, static_cast<double>(*v));
    out = static_cast<Int>(*v);
  }
  void assign(const ConfigKey& k, const toml::node& n, bool& out) const {
    const auto v = n.value_exact<bool>();
    if (!v) type_error(k, "true or false");
    out = *v;
  }
  void assign(const ConfigKey& k, const toml::node& n, int& out) const { assign_int(k, n, out); }
  void assign(const ConfigKey& k, const toml::node& n, int64_t& out) const { assign_int(k, n, out); }
  void assign(const ConfigKey& k, const toml::node& n, float& out) const {
    out = static_cast<float>(number_of(k, n, "a number"));
  }
  void assign(const ConfigKey& k, const toml::node& n, double& out) const {
    out = number_of(k, n, "a number");
  }
  void assign(const ConfigKey& k, const toml::node& n, std::string& out) const {
    const auto v = n.value_exact<std::string>();
    if (!v) type_error(k, "a string");
    // A NUL would cut a path short where the operating system reads it (\u0000 is valid TOML).
    if (v->find('\0') != std::string::npos) type_error(k, "a string without NUL characters");
    out = *v;
  }
  // A list, or a single value taken as a list of one.
  void assign(const ConfigKey& k, const toml::node& n, std::vector<std::string>& out) const {
    out.clear();
    if (!n.is_array()) return out.push_back(std::string{}), assign(k, n, out.back());
    for (const toml::node& item : *n.as_array()) {
      const auto v = item.value_exact<std::string>();
      if (!v || v->find('\0') != std::string::npos)
        type_error(k, "a string or a list of strings, without NUL characters");
      out.push_back(*v);
    }
  }
  void assign(const ConfigKey& k, const toml::node& n, std::vector<double>& out) const {
    out.clear();
    if (!n.is_array()) return out.push_back(number_of(k, n, "a number or a list of numbers"));
    for (const toml::node& item : *n.as_array())
      out.push_back(number_of(k, item, "a number or a list of numbers"));
  }

  toml::table& root_;
  std::string file_;
  std::set<std::string> overridden_;
  std::set<std::string> seen_;
};

// Keys of one family used with another (model.t5_ffn on a GPT, ...), each a UserError naming the
// key and the family.
void check_family_keys(const TomlReader& r, const RunConfig& c) {
  auto given = [&c](const char* key) { return c.origin.count(key) > 0; };
  auto only = [&](const char* key, const char* family, const char* what) {
    if (given(key) && c.arch != family)
      throw UserError(r.where(key) + ": " + key + " applies to " + what + " only, and model.arch is \"" +
                      c.arch + "\"");
  };
  only("model.t5_ffn", "t5", "T5");
  const bool recurrent = is_recurrent_arch(c.arch);
  for (const char* key : {"model.tied", "model.residual", "model.carry_state"})
    if (given(key) && !recurrent)
      throw UserError(r.where(key) + ": " + key +
                      " applies to the recurrent families (rnn, lstm, gru) only, and "
                      "model.arch is \"" +
                      c.arch + "\"");
  for (const char* key : {"model.n_head", "model.max_seq_len"})
    if (given(key) && recurrent)
      throw UserError(r.where(key) + ": " + key + " does not apply to model.arch = \"" + c.arch +
                      "\" (no attention heads, no position table)");
  if (recurrent && c.recurrent.carry_state) {
    if (c.train.grad_accum != 1)
      throw UserError(r.where("train.grad_accum") +
                      ": model.carry_state = true needs train.grad_accum = 1 (each batch row carries its "
                      "state into the same row of the next step)");
    if (c.data.paths.size() > 1)
      throw UserError(
          r.where("data.path") +
          ": model.carry_state = true reads one corpus as consecutive windows per row; a blend of " +
          std::to_string(c.data.paths.size()) + " data.path sources cannot keep them consecutive");
  }
  only("data.whole_word_masking", "bert", "BERT");
  if (c.arch == "t5" && given("model.max_seq_len"))
    throw UserError(
        r.where("model.max_seq_len") +
        ": model.max_seq_len does not apply to T5, which has no position table (relative position "
        "buckets instead)");
  if (c.arch != "gpt" && !recurrent && c.sample.tokens > 0)
    throw UserError(r.where("sample.tokens") +
                    ": sample.tokens: only GPT and the recurrent families generate text after training "
                    "(model.arch is \"" +
                    c.arch + "\")");
  try {
    parse_t5_ffn(c.t5_ffn);
  } catch (const UserError& e) {
    throw UserError(r.where("model.t5_ffn") + ": " + e.what());
  }
}

// The keys of the other command: [finetune] for `kervan train`; data.path (and what goes with
// it) for `kervan finetune`, which reads finetune.train. And the keys a task needs.
void check_command_keys(const TomlReader& r, const RunConfig& c, Command command) {
  auto given = [&c](const std::string& key) { return c.origin.count(key) > 0; };
  if (command == Command::Train) {
    for (const auto& [key, from] : c.origin)
      if (key.starts_with("finetune."))
        throw UserError(r.where(key) + ": " + key + " is read by kervan finetune, not kervan train");
    return;
  }
  if (given("checkpoint.init_from"))
    throw UserError(r.where("checkpoint.init_from") +
                    ": kervan finetune starts from a checkpoint's weights with finetune.init_from, not "
                    "checkpoint.init_from");
  for (const char* key : {"data.path", "data.weights", "data.whole_word_masking", "sample.tokens",
                          "data.coordinator", "parallel.coordinator"})
    if (given(key))
      throw UserError(r.where(key) + ": " + key +
                      " is read by kervan train, not kervan finetune (which reads " + "finetune.train)");
  if (is_recurrent_arch(c.arch))
    throw UserError(r.where("model.arch") + ": kervan finetune takes GPT, BERT or T5; model.arch is \"" +
                    c.arch + "\" (the recurrent families pretrain with kervan train)");
  const auto& f = c.finetune;
  if (f.task != "classify" && f.task != "text2text")
    throw UserError(r.where("finetune.task") +
                    ": finetune.task must be \"classify\" or \"text2text\", got \"" + f.task + "\"");
  if (f.train.empty()) throw UserError(r.where("finetune.train") + ": finetune.train is required");
  if (f.task == "classify" && c.arch == "t5")
    throw UserError(r.where("finetune.task") +
                    ": finetune.task = \"classify\" takes BERT or GPT (a head on [CLS] or the last token); "
                    "model.arch is \"t5\" (use text2text)");
  if (f.task == "text2text" && c.arch == "bert")
    throw UserError(r.where("finetune.task") +
                    ": finetune.task = \"text2text\" takes T5 or GPT; BERT has no decoder (use classify)");
  if (f.task != "classify" && given("finetune.labels"))
    throw UserError(r.where("finetune.labels") + ": finetune.labels applies to finetune.task = \"classify\"");
  if (c.data.tokenizer.empty() || c.data.tokenizer == "none")
    throw UserError(r.where("data.tokenizer") +
                    ": kervan finetune encodes text with data.tokenizer (gpt2, bytes or a tokenizer folder)");
}

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
  for (const ConfigKey& k : config_keys())
    if (k.same_on_every_rank) s += std::string(k.key) + "=" + exact_value(k, *this) + "\n";
  return s;
}

void check_model_shape(const RunConfig& c, const KeyText& where, const KeyText& label) {
  const int64_t seq = c.train.seq_len;
  const int64_t min_seq = c.arch == "bert" ? 4 : c.arch == "t5" ? 8 : 1;  // [CLS] x [SEP]; a few spans
  if (seq < min_seq)
    throw UserError(where("train.seq_len") + ": " + label("train.seq_len") + " must be >= " +
                    std::to_string(min_seq) + " for " + c.arch);
  try {
    c.model.validate();
  } catch (const UserError& e) {
    throw UserError(where("") + ": " + e.what());
  }
  if (seq > c.model.max_seq_len)
    throw UserError(where("train.seq_len") + ": " + label("train.seq_len") + " (" + std::to_string(seq) +
                    ") exceeds model.max_seq_len (" + std::to_string(c.model.max_seq_len) + ")");
}

void check_tokenizer_name(const std::string& tokenizer, const std::string& where) {
  if (tokenizer.empty() || tokenizer == "none" || tokenizer == "bytes" || tokenizer == "gpt2") return;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(tokenizer, ec))
    throw UserError(where + ": data.tokenizer '" + tokenizer +
                    "' is neither a tokenizer name (gpt2, bytes, none) nor a folder (with encoder.json and "
                    "vocab.bpe)");
  for (const char* file : {"encoder.json", "vocab.bpe"})
    if (!fs::is_regular_file(tokenizer + "/" + file, ec))
      throw UserError(where + ": data.tokenizer '" + tokenizer + "' is a folder without " + file +
                      " (a tokenizer folder holds encoder.json and vocab.bpe)");
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides,
                          Command command) {
  require_file(path, "config file");
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    std::string msg(e.description());
    if (msg.find("could not be opened") != std::string::npos ||
        msg.find("File could not") != std::string::npos)
      throw UserError(path + ": cannot open config file");
    throw UserError(path + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column) +
                    ": invalid TOML: " + msg);
  }
  std::set<std::string> overridden;
  for (const std::string& o : overrides) overridden.insert(apply_override(root, o));
  TomlReader r(root, path, overridden);
  RunConfig c;
  c.file = path;

  // The family, then its preset: the shape keys read after it override its values.
  const ConfigKey& arch = *find_config_key("model.arch");
  r.read(arch, c);
  if (c.arch != "gpt" && c.arch != "bert" && c.arch != "t5" && !is_recurrent_arch(c.arch))
    throw UserError(r.where("model.arch") +
                    ": model.arch must be \"gpt\", \"bert\", \"t5\", \"rnn\", \"lstm\" or \"gru\", got \"" +
                    c.arch + "\"");
  const ConfigKey& preset = *find_config_key("model.preset");
  if (r.read(preset, c)) {
    try {
      c.model = preset_shape(c.arch, c.preset);
    } catch (const UserError& e) {
      throw UserError(r.where("model.preset") + ": " + e.what());
    }
  }
  for (const ConfigKey& k : config_keys())
    if (&k != &arch && &k != &preset) r.read(k, c);
  r.reject_unknown();
  auto given = [&c](const char* key) { return c.origin.count(key) > 0; };
  check_command_keys(r, c, command);
  check_family_keys(r, c);
  auto& t = c.train;
  if (!given("train.min_lr")) t.min_lr = t.lr / 10;
  const bool has_max_seq =
      (!c.preset.empty() && c.arch != "t5" && !is_recurrent_arch(c.arch)) || given("model.max_seq_len");
  if (is_recurrent_arch(c.arch)) c.model.n_head = 1;  // no heads: the shared shape check passes

  // Checks across keys (each key's own range was checked where it was read), naming the key.
  for (const char* key : {"train.steps", "train.micro_batch", "train.seq_len"})
    if (!given(key)) throw UserError(path + ": " + key + " is required");
  if (!has_max_seq) c.model.max_seq_len = t.seq_len;
  check_model_shape(
      c, [&](const std::string& key) { return key.empty() ? path : r.where(key); },
      [](const std::string& key) { return key; });
  check_tokenizer_name(c.data.tokenizer, r.where("data.tokenizer"));
  if (command == Command::Train && c.data.paths.empty() && c.data.coordinator.empty())
    throw UserError(path + ": data.path is required (or data.coordinator)");
  if (!c.parallel.coordinator.empty() && c.parallel.coordinator != "embedded")
    throw UserError(r.where("parallel.coordinator") +
                    ": parallel.coordinator must be \"embedded\" or unset, not \"" + c.parallel.coordinator +
                    "\"");
  if (!c.parallel.coordinator.empty() && !c.data.coordinator.empty())
    throw UserError(r.where("parallel.coordinator") +
                    ": parallel.coordinator = \"embedded\" serves data.path itself; "
                    "data.coordinator names another coordinator (set one of them)");
  if (!c.data.coordinator.empty() && c.data.coordinator.find(':') == std::string::npos)
    throw UserError(r.where("data.coordinator") + ": data.coordinator \"" + c.data.coordinator +
                    "\" is not HOST:PORT");
  for (const std::string& p : c.data.paths)
    if (p.empty()) throw UserError(r.where("data.path") + ": data.path is required (an entry is empty)");
  try {
    refuse_repeated_files(c.data.paths, "data.path entry");  // its tokens would count twice
  } catch (const UserError& e) {
    throw UserError(r.where("data.path") + ": " + e.what() + " (data.weights weighs a corpus)");
  }
  // (With data.coordinator and no data.path, the served corpora are counted when they are known.)
  if (!c.data.weights.empty() && c.data.weights.size() != c.data.paths.size() &&
      !(c.data.paths.empty() && !c.data.coordinator.empty()))
    throw UserError(r.where("data.weights") + ": data.weights needs one weight per data.path (" +
                    std::to_string(c.data.paths.size()) + "), got " + std::to_string(c.data.weights.size()));
  if (t.warmup_steps > t.steps)
    throw UserError(r.where("train.warmup_steps") + ": train.warmup_steps (" +
                    std::to_string(t.warmup_steps) + ") exceeds train.steps (" + std::to_string(t.steps) +
                    ")");
  if (t.decay_steps > t.steps)
    throw UserError(r.where("train.decay_steps") + ": train.decay_steps (" + std::to_string(t.decay_steps) +
                    ") exceeds train.steps (" + std::to_string(t.steps) + ")");
  if (t.min_lr > t.lr)
    throw UserError(r.where("train.min_lr") + ": train.min_lr (" + std::to_string(t.min_lr) +
                    ") exceeds train.lr (" + std::to_string(t.lr) + ")");
  // Decoupled decay multiplies every decayed weight by 1 - lr * weight_decay each step.
  if (static_cast<double>(t.lr) * t.weight_decay >= 1.0)
    throw UserError(r.where("train.weight_decay") +
                    ": train.lr x train.weight_decay must be < 1 (each step "
                    "multiplies the weights by 1 - lr x weight_decay)");
  if (!is_device_name(t.device))
    throw UserError(r.where("train.device") + ": train.device must be cpu or cuda, got '" + t.device + "'");
  if (t.precision != "fp32" && t.precision != "bf16")
    throw UserError(r.where("train.precision") + ": train.precision must be fp32 or bf16, got '" + t.precision + "'");
  if (t.precision == "bf16" && t.device != "cuda")
    throw UserError(r.where("train.precision") + ": train.precision = \"bf16\" needs train.device = \"cuda\" (the CPU computes in fp32)");
  try {
    parse_schedule_kind(t.schedule);
  } catch (const UserError& e) {
    throw UserError(r.where("train.schedule") + ": " + e.what());
  }
  if (c.sample.every > 0 && c.sample.tokens == 0)
    throw UserError(r.where("sample.every") +
                    ": sample.every needs sample.tokens > 0 (the length of each sample)");
  const auto& ck = c.checkpoint;
  if (ck.resume.empty())
    throw UserError(r.where("checkpoint.resume") + ": checkpoint.resume must be auto, none or a path");
  if (ck.on_failure != "stop" && ck.on_failure != "continue")
    throw UserError(r.where("checkpoint.on_failure") +
                    ": checkpoint.on_failure must be stop or continue, got '" + ck.on_failure + "'");
  return c;
}

}  // namespace kervan
