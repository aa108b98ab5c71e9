#include "checkpoint/snapshot.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace kervan {

namespace {
constexpr size_t kAlign = 64;
size_t aligned(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

// One memcpy of host memory.
struct HostCopy {
  std::byte* dst;
  const std::byte* src;
  size_t bytes;
};

// Copies host memory on every host thread, in pieces of at most 8 MB: the copy is all an
// asynchronous save blocks training for, and one thread leaves the memory bandwidth unused.
void copy_in_parallel(const std::vector<HostCopy>& copies) {
  constexpr size_t kPiece = 8 << 20;
  std::vector<HostCopy> pieces;
  for (const HostCopy& c : copies)
    for (size_t at = 0; at < c.bytes; at += kPiece)
      pieces.push_back({c.dst + at, c.src + at, std::min(kPiece, c.bytes - at)});
  const auto n = static_cast<int64_t>(pieces.size());
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n; ++i) std::memcpy(pieces[i].dst, pieces[i].src, pieces[i].bytes);
}
}  // namespace

void StateSnapshot::take(const StateDict& state, Backend& backend, bool copy) {
  tensors_.clear();
  values_ = state.values;
  const auto copied = [copy](const StateTensor& t) { return copy || t.data.device() != Device::CPU; };
  size_t total = 0;
  for (const StateTensor& t : state.tensors)
    if (t.writer && copied(t)) total += aligned(t.data.bytes());
  if (total > capacity_) {
    buffer_.reset(new std::byte[total]);
    capacity_ = total;
  }
  size_t at = 0;
  std::vector<HostCopy> host_copies;
  for (const StateTensor& t : state.tensors) {
    if (!t.writer) continue;
    KERVAN_CHECK(t.data.numel() == t.slice.flat_count,
                 "state tensor " + t.name + " does not match its slice");
    SnapshotTensor s{t.name, t.slice, t.data.dtype(), t.replica, nullptr};
    if (copied(t)) {
      std::byte* dst = buffer_.get() + at;
      if (t.data.device() == Device::CPU) {
        host_copies.push_back({dst, static_cast<const std::byte*>(t.data.raw()), t.data.bytes()});
      } else {
        backend.copy_to_host(dst, t.data);
      }
      s.data = dst;
      at += aligned(t.data.bytes());
    } else {
      s.data = t.data.raw();
    }
    tensors_.push_back(std::move(s));
  }
  copy_in_parallel(host_copies);
}

int64_t StateSnapshot::bytes() const {
  int64_t n = 0;
  for (const SnapshotTensor& t : tensors_) n += t.bytes();
  return n;
}

}  // namespace kervan
