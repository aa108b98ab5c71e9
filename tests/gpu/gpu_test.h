#pragma once
// What every GPU test shares: the CPU backend as the reference twin, the CUDA backend under test
// (loaded from libkervan_cuda.so beside the binary, as kervan loads it: core/cuda_module.h), and
// tensors that hold the same fresh random values on both (METHOD.md: never zeros or ones).
// Outputs a kernel overwrites start as NaN on both sides, so an element the GPU never wrote fails
// the comparison (NaN never passes).
//
// Without a device the tests skip; with KERVAN_REQUIRE_GPU=1 (scripts/gpu-check.sh) they fail.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "core/backends/backends.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "core/error.h"

namespace kervan::gpu_test {

// The same tensor on both backends.
struct Twin {
  Tensor cpu, gpu;
};

inline bool require_gpu() {
  const char* v = std::getenv("KERVAN_REQUIRE_GPU");
  return v && std::string(v) == "1";
}

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      gpu = make_backend("cuda");
    } catch (const UserError& e) {  // "no CUDA device: ..."
      if (require_gpu()) FAIL() << e.what();
      GTEST_SKIP() << e.what();
    }
    set_host_threads(2);
    cpu = make_cpu_backend();
    rng.seed(std::random_device{}());  // fresh inputs each run; a failure prints its shape
  }

  std::vector<float> normal(int64_t n, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
  }
  Twin from_host(const Shape& shape, const std::vector<float>& v) {
    Twin t{cpu->empty(shape, DType::F32), gpu->empty(shape, DType::F32)};
    cpu->copy_from_host(t.cpu, v.data());
    gpu->copy_from_host(t.gpu, v.data());
    return t;
  }
  Twin from_host_i32(const Shape& shape, const std::vector<int32_t>& v) {
    Twin t{cpu->empty(shape, DType::I32), gpu->empty(shape, DType::I32)};
    cpu->copy_from_host(t.cpu, v.data());
    gpu->copy_from_host(t.gpu, v.data());
    return t;
  }
  Twin rand(const Shape& shape, float scale = 1.0f) {
    return from_host(shape, normal(shape_numel(shape), scale));
  }
  // Integers uniform in [lo, hi].
  Twin ints(const Shape& shape, int32_t lo, int32_t hi) {
    std::uniform_int_distribution<int32_t> d(lo, hi);
    std::vector<int32_t> v(shape_numel(shape));
    for (int32_t& x : v) x = d(rng);
    return from_host_i32(shape, v);
  }
  // An output the kernel overwrites: NaN on both sides.
  Twin poisoned(const Shape& shape) {
    return from_host(shape, std::vector<float>(shape_numel(shape), std::numeric_limits<float>::quiet_NaN()));
  }

  // ||gpu - cpu|| / ||cpu|| in double; infinity when the GPU side holds a NaN or infinity (an
  // unwritten element) or the two disagree on which entries are non-finite.
  double rel_err(const Twin& t) {
    const std::vector<float> a = gpu->to_host<float>(t.gpu), b = cpu->to_host<float>(t.cpu);
    double d2 = 0, b2 = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return std::numeric_limits<double>::infinity();
      d2 += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
      b2 += static_cast<double>(b[i]) * b[i];
    }
    if (b2 == 0) return std::sqrt(d2);
    return std::sqrt(d2 / b2);
  }

  std::unique_ptr<Backend> cpu, gpu;
  std::mt19937 rng;
};

inline std::string shape_name(std::initializer_list<int64_t> dims) {
  std::string s;
  for (int64_t d : dims) {
    if (!s.empty()) s += 'x';
    s += std::to_string(d);
  }
  return s;
}

}  // namespace kervan::gpu_test
