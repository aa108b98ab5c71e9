#include "checkpoint/snapshot.h"

#include "core/error.h"

namespace kervan {

namespace {
constexpr size_t kAlign = 64;
size_t aligned(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}
}  // namespace

void StateSnapshot::take(const StateDict& state, Backend& backend, bool copy) {
  tensors_.clear();
  values_ = state.values;
  size_t total = 0;
  for (const StateTensor& t : state.tensors)
    if (t.writer) total += aligned(t.data.bytes());
  if (copy && total > capacity_) {
    buffer_.reset(new std::byte[total]);
    capacity_ = total;
  }
  size_t at = 0;
  for (const StateTensor& t : state.tensors) {
    if (!t.writer) continue;
    KERVAN_CHECK(t.data.numel() == t.slice.flat_count,
                 "state tensor " + t.name + " does not match its slice");
    SnapshotTensor s{t.name, t.slice, t.data.dtype(), t.replica, nullptr};
    if (copy) {
      backend.copy_to_host(buffer_.get() + at, t.data);
      s.data = buffer_.get() + at;
      at += aligned(t.data.bytes());
    } else {
      KERVAN_CHECK(t.data.device() == Device::CPU, "an uncopied snapshot needs host tensors");
      s.data = t.data.raw();
    }
    tensors_.push_back(std::move(s));
  }
}

int64_t StateSnapshot::bytes() const {
  int64_t n = 0;
  for (const SnapshotTensor& t : tensors_) n += t.bytes();
  return n;
}

}  // namespace kervan
