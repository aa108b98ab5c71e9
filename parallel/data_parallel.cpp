#include "parallel/data_parallel.h"

#include <chrono>

#include "core/error.h"

namespace kervan {

GradientAllReducer::GradientAllReducer(ParameterSet& params, Communicator& group, int64_t bucket_bytes)
    : params_(params), group_(group) {
  auto& all = params.all();
  Bucket current;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const int64_t n = it->value.numel();
    if (current.params == 0) current.end = it->offset + n;
    current.begin = it->offset;
    ++current.params;
    bucket_of_offset_[it->offset] = static_cast<int>(buckets_.size());
    if ((current.end - current.begin) * static_cast<int64_t>(sizeof(float)) >= bucket_bytes) {
      buckets_.push_back(std::move(current));
      current = Bucket{};
    }
  }
  if (current.params) buckets_.push_back(std::move(current));
}

void GradientAllReducer::begin() {
  for (Bucket& b : buckets_) {
    KERVAN_CHECK(!b.handle, "begin() while a bucket is still in flight");
    b.pending = b.params;
  }
  armed_ = true;
}

void GradientAllReducer::launch(Bucket& b) {
  Tensor range = params_.grads().slice_flat(b.begin, {b.end - b.begin});
  b.handle = group_.all_reduce_async(range, ReduceOp::Avg);
}

void GradientAllReducer::grad_ready(const Parameter& p) {
  if (!armed_) return;
  Bucket& b = buckets_.at(bucket_of_offset_.at(p.offset));
  KERVAN_CHECK(b.pending > 0, "parameter " + p.name + " reported ready twice");
  if (--b.pending == 0) launch(b);
}

void GradientAllReducer::finish() {
  KERVAN_CHECK(armed_, "finish() without begin()");
  const auto t0 = std::chrono::steady_clock::now();
  comm_s_ = 0;
  for (Bucket& b : buckets_) {
    // A parameter that got no gradient report (unused this step) still has to be reduced.
    if (!b.handle) launch(b);
    b.handle->wait();
    comm_s_ += b.handle->seconds();
    b.handle.reset();
  }
  exposed_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  armed_ = false;
}

}  // namespace kervan
