#include <gtest/gtest.h>

#include "core/cpu/cpu_backend.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/parameters.h"
#include "core/rng.h"

namespace kervan {
namespace {

TEST(Tensor, ViewsShareStorage) {
  auto be = make_cpu_backend();
  Tensor t = be->zeros({4, 6});
  Tensor v = t.view({2, 12});
  Tensor r = t.rows(1, 3);
  EXPECT_EQ(r.shape(), (Shape{2, 6}));
  r.data<float>()[0] = 5.0f;
  EXPECT_EQ(t.data<float>()[6], 5.0f);
  EXPECT_EQ(v.data<float>()[6], 5.0f);
  EXPECT_THROW(t.view({5, 5}), std::logic_error);
  EXPECT_THROW(t.data<int32_t>(), std::logic_error);
  EXPECT_THROW(t.slice_flat(20, {5}), std::logic_error);
}

TEST(Parameters, FlatBuffersAndNamedStreams) {
  auto be = make_cpu_backend();
  ParameterSet a;
  a.declare("w", {3, 4}, {Init::Kind::Normal, 1.0f, 2}, true);
  a.declare("b", {4}, {Init::Kind::Ones}, false);
  a.allocate(*be);
  a.initialize(*be, 42);
  EXPECT_EQ(a.numel(), 16);
  EXPECT_EQ(a.find("b")->offset, 12);
  // Rows past init_rows stay zero; the ones-init is exact.
  for (int i = 8; i < 12; ++i) EXPECT_EQ(a.values().data<float>()[i], 0.0f);
  for (int i = 12; i < 16; ++i) EXPECT_EQ(a.values().data<float>()[i], 1.0f);
  // The values of "w" depend only on (seed, name, index), not on what else is declared.
  ParameterSet b;
  b.declare("other", {7}, {Init::Kind::Normal, 1.0f}, false);
  b.declare("w", {3, 4}, {Init::Kind::Normal, 1.0f, 2}, true);
  b.allocate(*be);
  b.initialize(*be, 42);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(a.find("w")->value.data<float>()[i], b.find("w")->value.data<float>()[i]);
}

TEST(Rng, NormalMoments) {
  const uint64_t key = stream_key(1, "x");
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double z = normal_at(key, i);
    s += z;
    s2 += z * z;
  }
  // Standard errors: mean 1/sqrt(n) = 0.0022, variance sqrt(2/n) = 0.0032; allow 5 sigma.
  EXPECT_NEAR(s / n, 0.0, 0.011);
  EXPECT_NEAR(s2 / n, 1.0, 0.016);
}

}  // namespace
}  // namespace kervan
