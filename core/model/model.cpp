#include "core/model/model.h"

#include "core/error.h"

namespace kervan {

void Model::next_token_logits(const int32_t*, int64_t, float*) {
  KERVAN_CHECK(false, "the " + family() + " model does not generate text");
}

void Model::cache_prefill(const int32_t*, int64_t, float*) {
  KERVAN_CHECK(false, "the " + family() + " model has no KV cache");
}

void Model::cache_decode(int32_t, float*) {
  KERVAN_CHECK(false, "the " + family() + " model has no KV cache");
}

void Model::report_grads(size_t first, size_t last) {
  if (!grad_ready_) return;
  for (size_t i = first; i < last; ++i) grad_ready_(params().all()[i]);
}

}  // namespace kervan
