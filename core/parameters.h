#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/state.h"

namespace kervan {

// How a parameter starts: zeros, ones, or N(0, std) drawn from its own named stream (core/rng.h).
// `init_rows` limits the random rows (e.g. the real vocabulary of a padded embedding); the
// remaining rows start at zero. `block_std`, when set, gives each of its equal blocks of global
// rows its own std (a fused q|k|v weight whose parts start differently, as T5's do).
struct Init {
  enum class Kind { Zeros, Ones, Normal } kind = Kind::Zeros;
  float std = 0.0f;
  int64_t init_rows = -1;  // -1: all rows (counted in the global tensor)
  std::vector<float> block_std = {};
};

// Where a parameter's local tensor sits in its global tensor under tensor parallelism.
// Dimension `dim` (0: rows, 1: columns; -1: replicated, local == global) of the global tensor is
// `groups` equal blocks, and rank `index` of `parts` holds slice [index*S/parts, (index+1)*S/parts)
// of every block (S the block size). groups > 1 is the fused q|k|v weight: rank k holds
// [q_k; k_k; v_k]. Local element i maps to the global flat index global_index(local_shape, i).
struct Sharding {
  int dim = -1;
  int parts = 1, index = 0;
  int groups = 1;

  static Sharding rows(int parts, int index, int groups = 1) { return {0, parts, index, groups}; }
  static Sharding cols(int parts, int index) { return {1, parts, index, 1}; }
  bool sharded() const { return dim >= 0 && parts > 1; }
  Shape global_shape(const Shape& local) const;
  int64_t global_index(const Shape& local, int64_t i) const;

  // The local tensor as boxes of the global tensor, in local (row-major) order: one box, or
  // `groups` boxes for a fused q|k|v shard. `local_begin` is the box's first local element.
  struct LocalBox {
    int64_t local_begin;
    TensorSlice slice;
  };
  std::vector<LocalBox> boxes(const Shape& local) const;
};

struct Parameter {
  std::string name;
  Shape shape;
  Init init;
  Sharding sharding;  // shape above is the local shape
  bool weight_decay = false;
  int64_t offset = 0;  // element offset in the flat buffers
  Tensor value;        // view into ParameterSet::values()
  Tensor grad;         // view into ParameterSet::grads()
};

// All parameters of a model, in declaration (forward) order, backed by one flat value buffer and
// one flat gradient buffer. Layers declare their parameters while the model is built; allocate()
// then creates the buffers and the per-parameter views. Flat buffers make the optimizer, the
// gradient all-reduce buckets and checkpoints simple loops over memory.
class ParameterSet {
 public:
  // The returned reference stays valid (deque) and gets its tensors at allocate().
  Parameter& declare(std::string name, Shape shape, Init init, bool weight_decay, Sharding sharding = {});
  void allocate(Backend& backend);
  // Fills every parameter from (seed, parameter name) and zeros the gradients. Element i of a
  // sharded parameter gets the value of its global index, so every layout starts alike.
  void initialize(Backend& backend, uint64_t seed);
  void zero_grad(Backend& backend);

  std::deque<Parameter>& all() { return params_; }
  const std::deque<Parameter>& all() const { return params_; }
  Parameter* find(const std::string& name);
  int64_t numel() const { return numel_; }

  // Appends, as `prefix` + parameter name, the state tensors of a buffer laid out like the flat
  // parameters: `flat` holds elements [flat_begin, flat_begin + flat.numel()) of that layout
  // (the parameters themselves, an optimizer moment, or a ZeRO-1 chunk of one), cut into the
  // slices of the global tensors they belong to. `replica`: see StateTensor.
  void append_state(StateDict& out, const std::string& prefix, const Tensor& flat, int64_t flat_begin,
                    int replica = -1) const;
  Tensor& values() { return values_; }
  Tensor& grads() { return grads_; }

 private:
  std::deque<Parameter> params_;
  int64_t numel_ = 0;
  Tensor values_, grads_;
};

}  // namespace kervan
