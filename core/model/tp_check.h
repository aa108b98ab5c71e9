#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/tp_group.h"

namespace kervan {

// The tensor-parallel group a model splits over, or null when there is none (null or size 1).
// Every (size, what) must divide by the group size, else a UserError naming parallel.tp and `what`
// (e.g. "model.n_head"), thrown before any collective.
inline TpGroup* checked_tp(TpGroup* tp, std::initializer_list<std::pair<int64_t, std::string>> sizes) {
  if (!tp || tp->size() == 1) return nullptr;
  const int p = tp->size();
  for (const auto& [n, what] : sizes)
    if (n % p != 0)
      throw UserError("parallel.tp = " + std::to_string(p) + " does not divide " + what + " (" +
                      std::to_string(n) + ")");
  return tp;
}

}  // namespace kervan
