#include "core/parameters.h"

#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace kervan {

Parameter& ParameterSet::declare(std::string name, Shape shape, Init init, bool weight_decay) {
  KERVAN_CHECK(!values_.defined(), "declare after allocate: " + name);
  KERVAN_CHECK(find(name) == nullptr, "duplicate parameter " + name);
  Parameter& p = params_.emplace_back();
  p.name = std::move(name);
  p.shape = std::move(shape);
  p.init = init;
  p.weight_decay = weight_decay;
  p.offset = numel_;
  numel_ += shape_numel(p.shape);
  return p;
}

void ParameterSet::allocate(Backend& backend) {
  values_ = backend.empty({numel_}, DType::F32);
  grads_ = backend.empty({numel_}, DType::F32);
  for (Parameter& p : params_) {
    p.value = values_.slice_flat(p.offset, p.shape);
    p.grad = grads_.slice_flat(p.offset, p.shape);
  }
}

void ParameterSet::initialize(Backend& backend, uint64_t seed) {
  for (Parameter& p : params_) {
    std::vector<float> host(p.value.numel(), 0.0f);
    const int64_t row = p.shape.size() > 1 ? shape_numel(p.shape) / p.shape[0] : 1;
    const int64_t rows = p.init.init_rows < 0 ? p.shape[0] : p.init.init_rows;
    const uint64_t key = stream_key(seed, p.name);
    switch (p.init.kind) {
      case Init::Kind::Zeros:
        break;
      case Init::Kind::Ones:
        std::fill(host.begin(), host.end(), 1.0f);
        break;
      case Init::Kind::Normal:
        for (int64_t i = 0; i < rows * row; ++i) host[i] = p.init.std * normal_at(key, i);
        break;
    }
    backend.copy_from_host(p.value, host.data());
  }
  zero_grad(backend);
}

void ParameterSet::zero_grad(Backend& backend) { backend.fill(grads_, 0.0f); }

Parameter* ParameterSet::find(const std::string& name) {
  for (Parameter& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace kervan
