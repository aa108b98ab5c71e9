#pragma once
#include <cstdint>
#include <vector>

namespace kervan {

// The positions a head predicts, out of N: the rows n with targets[n] >= 0, in order, and their
// targets. Heads that see only these rows (BERT's masked positions, a classifier's one position
// per sequence) gather them from the [N, C] hidden states and scatter their gradient back.
struct LabelledRows {
  std::vector<int32_t> rows, targets;
  int64_t size() const { return static_cast<int64_t>(rows.size()); }
};

inline LabelledRows labelled_rows(const int32_t* targets, int64_t n) {
  LabelledRows out;
  for (int64_t i = 0; i < n; ++i)
    if (targets[i] >= 0) {
      out.rows.push_back(static_cast<int32_t>(i));
      out.targets.push_back(targets[i]);
    }
  return out;
}

}  // namespace kervan
