#include "core/model/model.h"

#include "core/error.h"

namespace kervan {

void Model::next_token_logits(const int32_t*, int64_t, float*) {
  KERVAN_CHECK(false, "the " + family() + " model does not generate text");
}

}  // namespace kervan
