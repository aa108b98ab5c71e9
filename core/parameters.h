#pragma once
#include <cstdint>
#include <deque>
#include <string>

#include "core/backend.h"

namespace kervan {

// How a parameter starts: zeros, ones, or N(0, std) drawn from its own named stream (core/rng.h).
// `init_rows` limits the random rows (e.g. the real vocabulary of a padded embedding); the
// remaining rows start at zero.
struct Init {
  enum class Kind { Zeros, Ones, Normal } kind = Kind::Zeros;
  float std = 0.0f;
  int64_t init_rows = -1;  // -1: all rows
};

struct Parameter {
  std::string name;
  Shape shape;
  Init init;
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
  Parameter& declare(std::string name, Shape shape, Init init, bool weight_decay);
  void allocate(Backend& backend);
  // Fills every parameter from (seed, parameter name) and zeros the gradients.
  void initialize(Backend& backend, uint64_t seed);
  void zero_grad(Backend& backend);

  std::deque<Parameter>& all() { return params_; }
  const std::deque<Parameter>& all() const { return params_; }
  Parameter* find(const std::string& name);
  int64_t numel() const { return numel_; }
  Tensor& values() { return values_; }
  Tensor& grads() { return grads_; }

 private:
  std::deque<Parameter> params_;
  int64_t numel_ = 0;
  Tensor values_, grads_;
};

}  // namespace kervan
