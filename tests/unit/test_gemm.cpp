#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/cpu/gemm.h"

namespace kervan {
namespace {

// Dense row-major storage of `rows` x `cols` with leading dimension `ld` >= cols; the padding holds
// a sentinel so that a kernel reading or writing outside the matrix shows.
struct Matrix {
  int64_t rows, cols, ld;
  std::vector<float> v;
  Matrix(int64_t r, int64_t c, int64_t pad, std::mt19937& rng, float sentinel)
      : rows(r), cols(c), ld(c + pad), v(size_t(r * (c + pad)), sentinel) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) v[size_t(i * ld + j)] = u(rng);
  }
  float at(int64_t i, int64_t j) const { return v[size_t(i * ld + j)]; }
};

struct Case {
  int64_t m, n, k;
  bool ta, tb;
  float alpha, beta;
};

// Checks sgemm against a double-precision reference. Each element of C is a k-term float sum in
// some order; its error is bounded by k * eps * sum_p |alpha a_ip b_pj| (+ the beta term's
// rounding), so the tolerance is 2 * (k + 2) * eps * that magnitude: a wrong element, a missing
// or doubled k-block or a misplaced edge is off by O(magnitude), far outside it.
void check(const Case& cs, int threads) {
  std::mt19937 rng(uint32_t(cs.m * 7919 + cs.n * 104729 + cs.k * 13 + cs.ta * 2 + cs.tb));
  const float sentinel = 1234.5f;
  const Matrix a = cs.ta ? Matrix(cs.k, cs.m, 3, rng, sentinel) : Matrix(cs.m, cs.k, 5, rng, sentinel);
  const Matrix b = cs.tb ? Matrix(cs.n, cs.k, 2, rng, sentinel) : Matrix(cs.k, cs.n, 7, rng, sentinel);
  Matrix c(cs.m, cs.n, 4, rng, sentinel);
  const Matrix c0 = c;
  // beta = 0 must not read C: NaN there would poison the result.
  if (cs.beta == 0.0f)
    for (int64_t i = 0; i < cs.m; ++i)
      for (int64_t j = 0; j < cs.n; ++j) c.v[size_t(i * c.ld + j)] = std::numeric_limits<float>::quiet_NaN();

  omp_set_num_threads(threads);
  sgemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.v.data(), a.ld, b.v.data(), b.ld, cs.beta, c.v.data(),
        c.ld, threads);

  const double eps = std::numeric_limits<float>::epsilon();
  for (int64_t i = 0; i < cs.m; ++i) {
    for (int64_t j = 0; j < c.ld; ++j) {
      const float got = c.at(i, j);
      if (j >= cs.n) {
        ASSERT_EQ(got, sentinel) << "wrote outside C at row " << i << " column " << j;
        continue;
      }
      double ref = 0.0, magnitude = 0.0;
      for (int64_t p = 0; p < cs.k; ++p) {
        const double x = cs.ta ? a.at(p, i) : a.at(i, p);
        const double y = cs.tb ? b.at(j, p) : b.at(p, j);
        ref += x * y;
        magnitude += std::fabs(x * y);
      }
      ref *= cs.alpha;
      magnitude *= std::fabs(cs.alpha);
      if (cs.beta != 0.0f) {
        ref += double(cs.beta) * c0.at(i, j);
        magnitude += std::fabs(double(cs.beta) * c0.at(i, j));
      }
      const double tol = 2.0 * double(cs.k + 2) * eps * magnitude + 1e-30;
      ASSERT_NEAR(got, ref, tol) << "C[" << i << "," << j << "] of m=" << cs.m << " n=" << cs.n
                                 << " k=" << cs.k << " ta=" << cs.ta << " tb=" << cs.tb
                                 << " alpha=" << cs.alpha << " beta=" << cs.beta << " threads=" << threads;
    }
  }
}

TEST(Gemm, MatchesDoubleReferenceOnEdgesTransposesAndScales) {
  SCOPED_TRACE(sgemm_kernel_name());
  // Sizes straddle the kernel's tiles (8 x 48), its blocks (128 rows, 256 of k) and 1.
  const int64_t ms[] = {1, 7, 8, 9, 129};
  const int64_t ns[] = {1, 17, 48, 49, 97};
  const int64_t ks[] = {1, 3, 256, 257};
  int cases = 0;
  for (const int64_t m : ms)
    for (const int64_t n : ns)
      for (const int64_t k : ks)
        for (int t = 0; t < 4; ++t) {
          const float alpha = (m + n + k) % 2 ? 1.0f : -0.5f;
          const float beta = t == 0 ? 0.0f : t == 1 ? 1.0f : t == 2 ? -0.75f : 0.0f;
          check({m, n, k, bool(t & 1), bool(t & 2), alpha, beta}, 2);
          ++cases;
        }
  EXPECT_EQ(cases, 5 * 5 * 4 * 4);
}

TEST(Gemm, LargerThanOneBlockInEveryDimension) {
  // n over one 3072-column panel, k over two 256-deep blocks, m over three 128-row blocks.
  check({300, 3100, 600, false, true, 1.0f, 0.0f}, 2);
  check({300, 3100, 600, true, false, 0.25f, 1.0f}, 2);
}

// Up to 4 rows times B^T (up to 16 when B^T is larger than the caches) take the unpacked
// dot-product path: tile edges in m, n and k, beta = 0 (C not read), accumulation into C, and
// more columns than one thread's share.
TEST(Gemm, FewRowsTimesTransposedB) {
  check({1, 1, 1, false, true, 1.0f, 0.0f}, 2);
  check({3, 70, 33, false, true, 1.0f, 0.0f}, 2);
  check({2, 9, 17, false, true, -0.5f, 1.0f}, 1);
  check({4, 1001, 300, false, true, 0.5f, -0.75f}, 2);
  check({5, 50, 40, false, true, 1.0f, 0.0f}, 2);      // one row past the path: the packed kernel
  check({9, 8200, 1024, false, true, 1.0f, 0.0f}, 2);  // 8.4M elements of B^T: dot products again
}

TEST(Gemm, ZeroDepthAndZeroAlphaScaleC) {
  check({5, 9, 0, false, false, 1.0f, 0.5f}, 1);
  check({5, 9, 0, false, false, 1.0f, 0.0f}, 1);
  check({5, 9, 4, false, false, 0.0f, 2.0f}, 1);
}

// The own kernel is used exactly where the CPU has AVX-512, unless KERVAN_GEMM=openblas asks otherwise
// (ctest runs these tests a second time that way: unit.gemm_openblas).
TEST(Gemm, KernelFollowsTheCpuAndTheEnvironment) {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
  const char* forced = std::getenv("KERVAN_GEMM");
  const bool openblas = forced != nullptr && std::string(forced) == "openblas";
  EXPECT_EQ(std::string(sgemm_kernel_name()), avx512 && !openblas ? "avx512" : "openblas");
}

// The kernel never splits k, so the bits of C do not depend on how many threads computed it.
TEST(Gemm, SameBitsForAnyThreadCount) {
  std::mt19937 rng(7);
  const int64_t m = 200, n = 500, k = 300;
  const Matrix a(m, k, 0, rng, 0.0f), b(n, k, 0, rng, 0.0f);
  std::vector<float> one(size_t(m * n)), two(size_t(m * n)), three(size_t(m * n));
  sgemm(false, true, m, n, k, 1.0f, a.v.data(), k, b.v.data(), k, 0.0f, one.data(), n, 1);
  sgemm(false, true, m, n, k, 1.0f, a.v.data(), k, b.v.data(), k, 0.0f, two.data(), n, 2);
  sgemm(false, true, m, n, k, 1.0f, a.v.data(), k, b.v.data(), k, 0.0f, three.data(), n, 3);
  if (std::string(sgemm_kernel_name()) != "avx512") GTEST_SKIP() << "OpenBLAS makes no such promise";
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, three);
}

// Called with threads = 1 from inside a parallel region (as attention does per head), every
// thread computes its own product, unaffected by the others.
TEST(Gemm, SerialCallsInsideAParallelRegion) {
  std::mt19937 rng(11);
  const int64_t m = 40, n = 70, k = 90;
  const Matrix a(m, k, 0, rng, 0.0f), b(k, n, 0, rng, 0.0f);
  std::vector<float> expected(size_t(m * n));
  sgemm(false, false, m, n, k, 1.0f, a.v.data(), k, b.v.data(), n, 0.0f, expected.data(), n, 1);
  std::vector<std::vector<float>> got(4, std::vector<float>(size_t(m * n)));
#pragma omp parallel for num_threads(2)
  for (int r = 0; r < 4; ++r)
    sgemm(false, false, m, n, k, 1.0f, a.v.data(), k, b.v.data(), n, 0.0f, got[size_t(r)].data(), n, 1);
  for (const auto& g : got) EXPECT_EQ(g, expected);
}

}  // namespace
}  // namespace kervan
