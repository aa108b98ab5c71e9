#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "core/backend.h"
#include "core/error.h"

namespace kervan {

// Where a piece of state sits in its global tensor, independent of the layout that holds it.
//
// The piece is a box of the global tensor, [offsets, offsets + box) along every dimension, or a
// contiguous part of one: elements [flat_begin, flat_begin + flat_count) of the box read
// row-major. A tensor-parallel shard is one box (a fused q|k|v shard is three); a ZeRO-1 chunk,
// which cuts the flat parameter buffer anywhere, is a flat part of such a box. A whole,
// unsharded tensor is the box of its full shape.
struct TensorSlice {
  Shape global_shape;
  std::vector<int64_t> offsets;  // one per dimension
  Shape box;                     // extents, one per dimension
  int64_t flat_begin = 0;
  int64_t flat_count = 0;

  static TensorSlice whole(const Shape& shape);
  // The part [begin, begin + count) of this slice's own elements (row-major within the box).
  TensorSlice part(int64_t begin, int64_t count) const;
  // Row-major index in the global tensor of element i (0 <= i < flat_count) of this slice.
  int64_t global_index(int64_t i) const;
  bool operator==(const TensorSlice&) const = default;
  std::string describe() const;  // "[0:64, 128:256] of [768, 2304]", "+ elements 10..20"
};

// One named tensor of a component's state: the slice this rank holds and its data.
struct StateTensor {
  std::string name;  // "model/h.0.attn.c_attn.weight", "optim/m/wte", ...
  TensorSlice slice;
  Tensor data;  // flat_count elements; a view of the component's own memory
  // The data-parallel replica that owns these elements (ZeRO-1 chunks), or -1 where every replica
  // holds the same values.
  int replica = -1;
  // Whether this rank is the one that saves these elements: of identical copies (data-parallel
  // replicas, a parameter replicated across tensor-parallel ranks) exactly one is the writer, so
  // the writers' slices cover every global tensor exactly once.
  bool writer = true;
};

// A scalar or small piece of state that is not a tensor: step counts, seeds, the data position.
using StateValue = std::variant<int64_t, double, std::string, std::vector<double>, std::vector<std::string>>;

// Everything a resume needs from a set of components, as named tensor slices and values.
struct StateDict {
  std::vector<StateTensor> tensors;
  std::map<std::string, StateValue> values;

  const StateTensor* find(const std::string& name, const TensorSlice& slice) const;
  // The value under `key` as T; throws UserError naming the key when it is absent or of another type.
  template <typename T>
  const T& value(const std::string& key) const;
};

// A component whose state a checkpoint saves: the model's parameters, the optimizer, the
// training progress. state() appends the component's tensors as views of its own memory (so
// writing into them restores them) and its values by copy; load_state() takes a dict of the same
// names and slices (for example one filled from a checkpoint), copies any tensor that is not
// already the component's own memory and applies the values.
class Stateful {
 public:
  virtual ~Stateful() = default;
  virtual void state(StateDict& out) = 0;
  virtual void load_state(const StateDict& in) = 0;
};

// Sets the writer flag of every tensor of a rank's state: a slice that covers its whole global
// tensor is replicated across the tensor-parallel group (its writer is TP rank 0), one with
// replica -1 across the data-parallel group (its writer is DP rank 0).
void mark_writers(StateDict& dict, int tp_rank, int dp_rank);

// Copies every tensor of `own` (a component's state) from the tensor of `in` with the same name
// and slice; a tensor that already is `own`'s memory is left alone. Throws UserError naming a
// tensor that `in` lacks or holds with another size.
void copy_state_tensors(Backend& be, const StateDict& own, const StateDict& in);

template <typename T>
const T& StateDict::value(const std::string& key) const {
  const auto it = values.find(key);
  if (it == values.end()) throw UserError("state value '" + key + "' is missing");
  const T* v = std::get_if<T>(&it->second);
  if (!v) throw UserError("state value '" + key + "' has another type");
  return *v;
}

}  // namespace kervan
