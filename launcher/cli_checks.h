#pragma once
#include <CLI/CLI.hpp>
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

}  // namespace kervan
