#include "core/parameters.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace kervan {

Shape Sharding::global_shape(const Shape& local) const {
  Shape g = local;
  if (sharded()) g[dim] *= parts;
  return g;
}

int64_t Sharding::global_index(const Shape& local, int64_t i) const {
  if (!sharded()) return i;
  const int64_t cols = local.size() > 1 ? shape_numel(local) / local[0] : 1;
  int64_t r = i / cols, c = i % cols;
  if (dim == 0) {
    const int64_t block = local[0] / groups;  // local rows of one group
    r = (r / block) * block * parts + index * block + r % block;
    return r * cols + c;
  }
  return r * cols * parts + index * cols + c;
}

std::vector<Sharding::LocalBox> Sharding::boxes(const Shape& local) const {
  const Shape global = global_shape(local);
  if (!sharded()) return {{0, TensorSlice::whole(global)}};
  std::vector<int64_t> offsets(local.size(), 0);
  if (dim == 1) {
    offsets[1] = index * local[1];
    return {{0, {global, offsets, local, 0, shape_numel(local)}}};
  }
  // Rows: block g of the local rows is rows [g*B*parts + index*B, +B) of the global tensor.
  const int64_t block = local[0] / groups, row = shape_numel(local) / local[0];
  Shape box = local;
  box[0] = block;
  std::vector<LocalBox> out;
  for (int g = 0; g < groups; ++g) {
    offsets[0] = g * block * parts + index * block;
    out.push_back({g * block * row, {global, offsets, box, 0, block * row}});
  }
  return out;
}

Parameter& ParameterSet::declare(std::string name, Shape shape, Init init, bool weight_decay,
                                 Sharding sharding) {
  KERVAN_CHECK(!values_.defined(), "declare after allocate: " + name);
  KERVAN_CHECK(find(name) == nullptr, "duplicate parameter " + name);
  Parameter& p = params_.emplace_back();
  p.name = std::move(name);
  p.shape = std::move(shape);
  p.init = init;
  p.sharding = sharding;
  KERVAN_CHECK(!sharding.sharded() ||
                   (static_cast<int64_t>(p.shape.size()) > sharding.dim && p.shape[0] % sharding.groups == 0),
               "bad sharding of " + p.name);
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
    const Shape global = p.sharding.global_shape(p.shape);
    const int64_t global_row = global.size() > 1 ? shape_numel(global) / global[0] : 1;
    const int64_t limit = (p.init.init_rows < 0 ? global[0] : p.init.init_rows) * global_row;
    const uint64_t key = stream_key(seed, p.name);
    switch (p.init.kind) {
      case Init::Kind::Zeros:
        break;
      case Init::Kind::Ones:
        std::fill(host.begin(), host.end(), 1.0f);
        break;
      case Init::Kind::Normal: {
        const auto& blocks = p.init.block_std;
        const int64_t block_elems =
            blocks.empty() ? 0 : shape_numel(global) / static_cast<int64_t>(blocks.size());
        for (int64_t i = 0; i < p.value.numel(); ++i) {
          const int64_t g = p.sharding.global_index(p.shape, i);
          const float std = blocks.empty() ? p.init.std : blocks[g / block_elems];
          if (g < limit) host[i] = std * normal_at(key, g);
        }
        break;
      }
    }
    backend.copy_from_host(p.value, host.data());
  }
  zero_grad(backend);
}

void ParameterSet::zero_grad(Backend& backend) {
  backend.fill(grads_, 0.0f);
}

void ParameterSet::append_state(StateDict& out, const std::string& prefix, const Tensor& flat,
                                int64_t flat_begin, int replica) const {
  const int64_t flat_end = flat_begin + flat.numel();
  for (const Parameter& p : params_) {
    for (const Sharding::LocalBox& b : p.sharding.boxes(p.shape)) {
      // This box's local elements, as a range of the flat layout, clipped to the buffer.
      const int64_t begin = p.offset + b.local_begin, end = begin + b.slice.flat_count;
      const int64_t lo = std::max(begin, flat_begin), hi = std::min(end, flat_end);
      if (lo >= hi) continue;
      StateTensor t;
      t.name = prefix + p.name;
      t.slice = b.slice.part(lo - begin, hi - lo);
      t.data = flat.slice_flat(lo - flat_begin, {hi - lo});
      t.replica = replica;
      out.tensors.push_back(std::move(t));
    }
  }
}

Parameter* ParameterSet::find(const std::string& name) {
  for (Parameter& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace kervan
