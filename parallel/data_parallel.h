#pragma once
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/model/model.h"
#include "parallel/communicator.h"

namespace kervan {

// Data-parallel gradient averaging, overlapped with the backward pass.
//
// The flat gradient buffer is cut into buckets of about `bucket_bytes`, walking the parameters
// in reverse declaration order (the order backward produces them), each bucket a contiguous
// range of whole parameters. The model reports each parameter whose gradient is final
// (grad_ready); when a bucket's last parameter arrives its all-reduce (average over the group)
// starts at once, while backward goes on with earlier layers. finish() waits for all of them.
// Every rank builds the same buckets and sees parameters become ready in the same order, so the
// collectives line up across ranks.
// On the GPU (an NCCL group) the hook fires when backward has queued a bucket's kernels, not when
// they have run; the communicator orders the all-reduce after them on the device (it waits for
// the compute stream's event: parallel/nccl_communicator.h), and finish() waits for every
// all-reduce from the host before the optimizer's kernels are queued.
//
// A model's sparse-rows table (Model::sparse_rows_table: GPT's token embedding wte) is its own
// bucket and the exception to "last layer first": it is also the LM head, the first gradient
// backward computes, and the embedding lookup, the last. Its all-reduce starts right after the LM
// head; the lookup's contribution (B*T rows, tiny next to wte) is all-gathered from every rank at
// the end and added to the averaged gradient as
//   dwte = avg_r(dense_r) + (1/n) sum_r scatter(rows_r)  =  avg_r(dense_r + scatter(rows_r)).
class GradientAllReducer {
 public:
  // Hooks itself into the model's backward (grad-ready and sparse-rows hooks).
  GradientAllReducer(Model& model, Communicator& group, int64_t bucket_bytes);
  ~GradientAllReducer();  // unhooks
  GradientAllReducer(const GradientAllReducer&) = delete;
  GradientAllReducer& operator=(const GradientAllReducer&) = delete;

  // Arms the reducer for the coming backward (the last micro-batch of a step).
  void begin();
  void grad_ready(const Parameter& p);
  // The sparse-table rows of this rank's last backward; false when not armed.
  bool sparse_rows(const Tensor& rows, const Tensor& ids);
  // Returns when every bucket is averaged across the group.
  void finish();

  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  // Of the last step: seconds finish() waited (communication not hidden behind backward), and
  // seconds the all-reduces took in total.
  double exposed_s() const { return exposed_s_; }
  double comm_s() const { return comm_s_; }

 private:
  struct Bucket {
    int64_t begin = 0, end = 0;  // element range in the flat gradient buffer
    int params = 0, pending = 0;
    std::unique_ptr<CommHandle> handle;
  };
  void launch(Bucket& b);

  Model& model_;
  ParameterSet& params_;
  Communicator& group_;
  Backend& be_;
  const Parameter* table_;
  Tensor all_rows_, all_ids_;  // every rank's sparse-table rows and ids, gathered
  std::unique_ptr<CommHandle> rows_handle_, ids_handle_;
  std::vector<Bucket> buckets_;
  std::unordered_map<int64_t, int> bucket_of_offset_;
  bool armed_ = false;
  double exposed_s_ = 0, comm_s_ = 0;
};

}  // namespace kervan
