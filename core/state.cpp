#include "core/state.h"

namespace kervan {

TensorSlice TensorSlice::whole(const Shape& shape) {
  return {shape, std::vector<int64_t>(shape.size(), 0), shape, 0, shape_numel(shape)};
}

TensorSlice TensorSlice::part(int64_t begin, int64_t count) const {
  KERVAN_CHECK(begin >= 0 && count >= 0 && begin + count <= flat_count, "slice part out of range");
  TensorSlice s = *this;
  s.flat_begin = flat_begin + begin;
  s.flat_count = count;
  return s;
}

int64_t TensorSlice::global_index(int64_t i) const {
  // Element i of the box, row-major, then its coordinates shifted by the offsets.
  int64_t rest = flat_begin + i, g = 0, stride = 1;
  for (int d = static_cast<int>(box.size()) - 1; d >= 0; --d) {
    const int64_t coord = rest % box[d] + offsets[d];
    rest /= box[d];
    g += coord * stride;
    stride *= global_shape[d];
  }
  return g;
}

std::string TensorSlice::describe() const {
  std::string s = "[";
  for (size_t d = 0; d < box.size(); ++d)
    s += (d ? ", " : "") + std::to_string(offsets[d]) + ":" + std::to_string(offsets[d] + box[d]);
  s += "] of " + shape_str(global_shape);
  if (flat_count != shape_numel(box))
    s += ", elements " + std::to_string(flat_begin) + ".." + std::to_string(flat_begin + flat_count);
  return s;
}

const StateTensor* StateDict::find(const std::string& name, const TensorSlice& slice) const {
  for (const StateTensor& t : tensors)
    if (t.name == name && t.slice == slice) return &t;
  return nullptr;
}

void mark_writers(StateDict& dict, int tp_rank, int dp_rank) {
  for (StateTensor& t : dict.tensors) {
    const bool tp_replicated = t.slice.box == t.slice.global_shape;
    t.writer = (tp_rank == 0 || !tp_replicated) && (t.replica >= 0 || dp_rank == 0);
  }
}

void copy_state_tensors(Backend& be, const StateDict& own, const StateDict& in) {
  for (const StateTensor& mine : own.tensors) {
    const StateTensor* src = in.find(mine.name, mine.slice);
    if (!src) throw UserError("state tensor " + mine.name + " " + mine.slice.describe() + " is missing");
    if (src->data.numel() != mine.data.numel() || src->data.dtype() != mine.data.dtype())
      throw UserError("state tensor " + mine.name + ": " + std::to_string(src->data.numel()) + " " +
                      std::string(dtype_name(src->data.dtype())) + " elements where " +
                      std::to_string(mine.data.numel()) + " " + std::string(dtype_name(mine.data.dtype())) +
                      " are expected");
    if (src->data.raw() == mine.data.raw()) continue;
    Tensor dst = mine.data;
    be.copy(dst, src->data);
  }
}

}  // namespace kervan
