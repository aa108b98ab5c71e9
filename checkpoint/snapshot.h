#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/state.h"

namespace kervan {

// One tensor a rank saves, in host memory.
struct SnapshotTensor {
  std::string name;
  TensorSlice slice;
  DType dtype = DType::F32;
  int replica = -1;
  const void* data = nullptr;  // slice.flat_count elements
  int64_t bytes() const { return slice.flat_count * static_cast<int64_t>(dtype_size(dtype)); }
};

// What a rank saves of its state at one step boundary: the tensors it is the writer of (StateTensor::
// writer; the others are identical copies held by other ranks) and the values.
class StateSnapshot {
 public:
  // Takes `state`'s writer tensors. With `copy`, into this snapshot's own host buffer (kept and
  // reused by the next take), so training may go on at once; without, it points at the host
  // tensors themselves, which must stay unchanged until written, and still copies device tensors
  // (the writer reads host memory).
  void take(const StateDict& state, Backend& backend, bool copy);
  const std::vector<SnapshotTensor>& tensors() const { return tensors_; }
  const std::map<std::string, StateValue>& values() const { return values_; }
  int64_t bytes() const;

 private:
  std::vector<SnapshotTensor> tensors_;
  std::map<std::string, StateValue> values_;
  std::unique_ptr<std::byte[]> buffer_;  // uninitialised: every byte is copied over
  size_t capacity_ = 0;
};

}  // namespace kervan
