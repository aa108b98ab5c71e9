#pragma once
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace kervan {

// The range check of every floating-point command-line option. CLI::Range lets NaN through (every
// comparison with NaN is false), so `--temperature nan` or `--timeout-s nan` would be taken;
// FiniteRange refuses NaN and infinities as well as values outside [lo, hi], naming the value.
class FiniteRange : public CLI::Validator {
 public:
  FiniteRange(double lo, double hi) {
    name_ = "FINITE";
    description(std::string("a number in [") + CLI::detail::to_string(lo) + ", " + CLI::detail::to_string(hi) +
                "]");
    func_ = [lo, hi](std::string& text) -> std::string {
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size()) return "not a number: " + text;
      if (!std::isfinite(v)) return "Value " + text + " is not a finite number";
      if (v < lo || v > hi)
        return "Value " + text + " not in range " + CLI::detail::to_string(lo) + " to " + CLI::detail::to_string(hi);
      return std::string();
    };
  }
};

// Refuses an integer written out of the range of a 64-bit integer ("99999999999999999999"): CLI11
// would silently take the largest value instead. Other text passes (the option's own parsing and
// checks judge it).
class IntegerInRange : public CLI::Validator {
 public:
  IntegerInRange() {
    name_ = "INT64";
    func_ = [](std::string& text) -> std::string {
      const size_t digits = text.find_first_not_of("+-") == std::string::npos ? 0 : text.find_first_not_of("+-");
      if (digits > 1 || digits == text.size() || text.find_first_not_of("0123456789", digits) != std::string::npos)
        return std::string();  // not an integer literal
      errno = 0;
      (void)std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) return "Value " + text + " is out of range (a 64-bit integer)";
      return std::string();
    };
  }
};

// Refuses an empty value ("--out ''"): for a path it would otherwise reach the file system as "",
// whose error ("cannot create the output folder: Invalid argument") names nothing.
class NonEmpty : public CLI::Validator {
 public:
  NonEmpty() {
    name_ = "NONEMPTY";
    func_ = [](std::string& text) -> std::string { return text.empty() ? "an empty value names nothing" : ""; };
  }
};

// Puts NonEmpty on every text option in `app` and its subcommands except those where an empty
// text means something (an empty prompt, no document delimiter, a stop without a reason).
inline void check_texts_everywhere(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) {
    const std::string name = opt->get_name();
    if (opt->get_type_name().starts_with("TEXT") && name != "--prompt" && name != "--doc-delimiter" &&
        name != "--stop")
      opt->check(NonEmpty());
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) check_texts_everywhere(*sub);
}

// Puts IntegerInRange on every integer option (type INT or UINT), in `app` and all its subcommands.
inline void check_integers_everywhere(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) {
    const std::string type = opt->get_type_name();
    if (opt->get_type_size() != 0 && (type.starts_with("INT") || type.starts_with("UINT")))
      opt->check(IntegerInRange());
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) check_integers_everywhere(*sub);
}

}  // namespace kervan
