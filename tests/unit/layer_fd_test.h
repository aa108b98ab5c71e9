#pragma once
// The fixture of the layers' finite-difference tests: a CPU backend on 2 threads and random tensors.
#include <gtest/gtest.h>

#include <memory>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "fd_check.h"

namespace kervan::test {

class LayerFd : public ::testing::Test {
 protected:
  void SetUp() override { set_host_threads(2); }
  Tensor randn(Shape s, uint64_t seed, float std = 1.0f) {
    Tensor t = be->empty(s, DType::F32);
    fill_normal(t, seed, std);
    return t;
  }
  Tensor ints(Shape s, const std::vector<int32_t>& values) {
    Tensor t = be->empty(s, DType::I32);
    be->copy_from_host(t, values.data());
    return t;
  }
  std::unique_ptr<Backend> be = make_cpu_backend();
};

}  // namespace kervan::test
