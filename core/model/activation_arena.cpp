#include "core/model/activation_arena.h"

#include <string>

#include "core/error.h"

namespace kervan {

Tensor ActivationArena::make(Shape shape, DType dtype) {
  if (!allocated_) {
    buffers_.push_back(be_.empty(shape, dtype));
    ++next_;
    return buffers_.back();
  }
  KERVAN_CHECK(next_ < buffers_.size() && buffers_[next_].dtype() == dtype &&
                   shape_numel(shape) <= buffers_[next_].numel(),
               "step layout differs from the allocated one at buffer " + std::to_string(next_));
  return buffers_[next_++].slice_flat(0, std::move(shape));
}

int64_t ActivationArena::bytes() const {
  int64_t sum = 0;
  for (const Tensor& b : buffers_) sum += b.numel() * static_cast<int64_t>(dtype_size(b.dtype()));
  return sum;
}

void ActivationArena::end() {
  KERVAN_CHECK(next_ == buffers_.size(), "step layout rebuilt " + std::to_string(next_) + " of " +
                                             std::to_string(buffers_.size()) + " buffers");
  allocated_ = true;
}

}  // namespace kervan
