#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "launcher/run_config.h"

namespace kervan {

// The RunConfig field a key fills.
using ConfigField = std::variant<bool*, int*, int64_t*, float*, double*, std::string*,
                                 std::vector<std::string>*, std::vector<double>*>;

// The range a numeric key's value must lie in (every element, for a list). Floats must also be
// finite. Checked where the value is read, before it is narrowed to its field's type.
struct Bounds {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;
  bool max_exclusive = false;
  bool contains(double v) const;
  std::string describe() const;  // ">= 1", "> 0 and < 1", ...
};

// One config key: the single place a key is declared. Parsing (load_run_config), the cross-rank
// config hash (RunConfig::canonical) and the table in configs/README.md are all made from the
// list of these (config_keys()); a test fails when the README and the list differ.
struct ConfigKey {
  const char* key;           // "section.name"
  const char* type;          // as documented: "int", "float", "string", "string or list", ...
  const char* default_text;  // the default as documented, when it is not a plain value; "" = the
                             // value of the field in a default RunConfig
  const char* meaning;
  ConfigField (*field)(RunConfig&);
  Bounds bounds = {};
  // Part of the cross-rank hash: every rank must have the same value. Off for keys that may
  // differ per rank without changing what is trained (where rank 0 writes its metrics, ...).
  bool same_on_every_rank = true;
};

const std::vector<ConfigKey>& config_keys();
const ConfigKey* find_config_key(const std::string& key);

// The value of `key` in `config`, written exactly (floats in their shortest round-trip form, so
// 1e-8 and 1e-9 differ; strings length-prefixed): what the cross-rank hash is taken over.
std::string exact_value(const ConfigKey& key, const RunConfig& config);

// The markdown table of every key (| key | type | default | meaning |), as in configs/README.md.
std::string config_keys_markdown();

}  // namespace kervan
