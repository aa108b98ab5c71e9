#include "parallel/data_parallel.h"

#include <chrono>

#include "core/error.h"

namespace kervan {

GradientAllReducer::GradientAllReducer(Model& model, Communicator& group, int64_t bucket_bytes)
    : model_(model),
      params_(model.params()),
      group_(group),
      be_(model.backend()),
      table_(model.sparse_rows_table()) {
  auto& all = params_.all();
  Bucket current;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const int64_t n = it->value.numel();
    if (&*it == table_ && current.params) {  // wte alone in its bucket
      buckets_.push_back(std::move(current));
      current = Bucket{};
    }
    if (current.params == 0) current.end = it->offset + n;
    current.begin = it->offset;
    ++current.params;
    bucket_of_offset_[it->offset] = static_cast<int>(buckets_.size());
    if (&*it == table_ ||
        (current.end - current.begin) * static_cast<int64_t>(sizeof(float)) >= bucket_bytes) {
      buckets_.push_back(std::move(current));
      current = Bucket{};
    }
  }
  if (current.params) buckets_.push_back(std::move(current));
  model.set_grad_ready_hook([this](const Parameter& p) { grad_ready(p); });
  if (table_)
    model.set_sparse_rows_hook(
        [this](const Tensor& rows, const Tensor& ids) { return sparse_rows(rows, ids); });
}

GradientAllReducer::~GradientAllReducer() {
  model_.set_grad_ready_hook(nullptr);
  if (table_) model_.set_sparse_rows_hook(nullptr);
}

bool GradientAllReducer::sparse_rows(const Tensor& rows, const Tensor& tokens) {
  if (!armed_) return false;
  const int64_t n = group_.size();
  if (all_rows_.numel() != n * rows.numel()) {
    all_rows_ = be_.empty({n * rows.numel()}, DType::F32);
    all_ids_ = be_.empty({n * tokens.numel()}, DType::I32);
  }
  rows_handle_ = group_.all_gather_async(all_rows_, rows.view({rows.numel()}));
  ids_handle_ = group_.all_gather_async(all_ids_, tokens.view({tokens.numel()}));
  return true;
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
  if (rows_handle_) {
    rows_handle_->wait();
    ids_handle_->wait();
    comm_s_ += rows_handle_->seconds() + ids_handle_->seconds();
    Tensor table_grad = table_->grad;
    be_.scatter_add_rows(table_grad, all_rows_.view({all_ids_.numel(), table_->shape[1]}), all_ids_,
                         1.0f / static_cast<float>(group_.size()));
    rows_handle_.reset();
    ids_handle_.reset();
  }
  exposed_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  armed_ = false;
}

}  // namespace kervan
