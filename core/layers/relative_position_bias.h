#pragma once
#include <vector>

#include "core/parameters.h"
#include "core/tp_group.h"

namespace kervan {

// T5's relative position bias: a learned scalar per (bucket of j - i, head) added to the attention
// score of query i and key j. Buckets (Hugging Face's T5 _relative_position_bucket): with n the
// number of buckets (halved, and the sign of j - i choosing the half, when `bidirectional`, as in
// the encoder; the causal decoder sees only j <= i, d = i - j), distances d < n/2 have a bucket
// each, and larger ones share n/2 logarithmic buckets up to `max_distance`:
//   bucket(d) = d                                                          if d < n/2
//             = min(n - 1, n/2 + int(log(d / (n/2)) / log(max_distance / (n/2)) * (n - n/2)))
// The table [num_buckets, n_head] is one per stack (computed once, shared by its layers), so its
// gradient sums d(scores) over every layer. Tensor parallel: split by head (columns), rank k
// holding heads [k*NH/p, (k+1)*NH/p), the heads its attention layers own.
class RelativePositionBias {
 public:
  RelativePositionBias(ParameterSet& params, const std::string& name, int n_head, bool bidirectional,
                       float init_std, TpGroup* tp = nullptr, int num_buckets = 32, int max_distance = 128);

  static int32_t bucket(int64_t relative_position, bool bidirectional, int num_buckets, int max_distance);
  // buckets[i * Tk + j] = bucket(j - i) for Tq queries and Tk keys.
  std::vector<int32_t> buckets(int64_t Tq, int64_t Tk) const;

  // bias [NH_local, Tq, Tk] from the buckets [Tq, Tk] (int32, on the device).
  void forward(Backend& be, Tensor& bias, const Tensor& buckets) const;
  // The table's gradient accumulates from dbias [NH_local, Tq, Tk].
  void backward(Backend& be, const Tensor& dbias, const Tensor& buckets) const;
  int local_heads() const { return static_cast<int>(table_.shape[1]); }

 private:
  bool bidirectional_;
  int num_buckets_, max_distance_;
  Parameter& table_;
};

}  // namespace kervan
