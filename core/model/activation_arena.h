#pragma once
#include <vector>

#include "core/backend.h"

namespace kervan {

// A model's activations, sized once for its largest step and reused for smaller ones. The model's
// layout code asks for its tensors with make(shape, dtype), always in the same order: the first
// pass allocates one buffer per tensor (at the largest shapes), every later pass returns views of
// the front of the same buffers at the step's shapes.
class ActivationArena {
 public:
  explicit ActivationArena(Backend& be) : be_(be) {}
  // Starts a pass; end() checks that it asked for every buffer.
  void begin() { next_ = 0; }
  Tensor make(Shape shape, DType dtype = DType::F32);
  void end();
  // Bytes of the buffers allocated so far.
  int64_t bytes() const;

 private:
  Backend& be_;
  std::vector<Tensor> buffers_;
  size_t next_ = 0;
  bool allocated_ = false;
};

}  // namespace kervan
