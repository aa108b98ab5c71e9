// The host arithmetic of the CUDA backend's bf16 matmul, checked where no GPU is: the bf16 operand
// workspace's layout and the alignment cuBLASLt is told (core/matmul_workspace.h), and the mapping of
// a row-major product onto cuBLASLt's column-major one (core/column_major_gemm.h), evaluated as
// cuBLASLt defines it and compared with the row-major product.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/column_major_gemm.h"
#include "core/matmul_workspace.h"

namespace kervan {
namespace {

TEST(MatmulWorkspace, CopiesStartAligned256AndDoNotOverlap) {
  struct Case {
    int64_t a, b;
  };
  for (const Case c :
       {Case{1, 1}, Case{7, 129}, Case{128, 128}, Case{129, 1000}, Case{16384 * 50304LL, 50304 * 768LL}}) {
    const Bf16OperandLayout l = bf16_operand_layout(c.a, c.b);
    EXPECT_EQ(l.b_offset % kMatmulOperandAlign, 0) << c.a;
    EXPECT_GE(l.b_offset, 2 * c.a) << c.a;                        // a's copy ends before b's begins
    EXPECT_LT(l.b_offset, 2 * c.a + kMatmulOperandAlign) << c.a;  // with less than one granule between
    EXPECT_GE(l.bytes, l.b_offset + 2 * c.b) << c.b;
    EXPECT_LT(l.bytes, l.b_offset + 2 * c.b + kMatmulOperandAlign) << c.b;
    EXPECT_EQ(l.bytes % kMatmulOperandAlign, 0);
  }
  // 128 bf16 values are exactly one 256-byte granule: b follows with no gap.
  EXPECT_EQ(bf16_operand_layout(128, 1).b_offset, 256);
  EXPECT_EQ(bf16_operand_layout(128, 1).bytes, 512);
}

TEST(MatmulWorkspace, AddressAlignmentIsTheLargestPowerOfTwoUpTo256) {
  EXPECT_EQ(address_alignment(0x7f0000000000), 256);  // a cudaMalloc'd block
  EXPECT_EQ(address_alignment(0x7f0000000000 + 512), 256);
  EXPECT_EQ(address_alignment(0x7f0000000000 + 128), 128);
  EXPECT_EQ(address_alignment(0x7f0000000000 + 4 * 7), 4);  // a view 7 floats in
  EXPECT_EQ(address_alignment(0x7f0000000000 + 4 * 6), 8);
  EXPECT_EQ(address_alignment(0x7f0000000000 + 16 * 3), 16);
  EXPECT_EQ(address_alignment(2), 2);
}

// D = alpha op(A) op(B) + beta D, column-major, each stored element (i, j) at i + j * ld: cuBLASLt's
// definition, on the buffers the backend passes it (A = our b, B = our a, D = our y).
void column_major_reference(const ColumnMajorGemm& g, const std::vector<double>& A,
                            const std::vector<double>& B, std::vector<double>& D, double alpha, double beta) {
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < g.k; ++p) {
        const double a = g.trans_a ? A[p + i * g.lda] : A[i + p * g.lda];
        const double b = g.trans_b ? B[j + p * g.ldb] : B[p + j * g.ldb];
        sum += a * b;
      }
      D[i + j * g.ldd] = alpha * sum + beta * D[i + j * g.ldd];
    }
}

TEST(ColumnMajorGemm, RowMajorProductsMapOntoTheColumnMajorOne) {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  struct Case {
    int64_t m, k, n;
  };
  for (const Case c : {Case{1, 1, 1}, Case{3, 7, 5}, Case{7, 1, 129}, Case{4, 9, 2}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const int64_t ar = ta ? c.k : c.m, ac = ta ? c.m : c.k, br = tb ? c.n : c.k, bc = tb ? c.k : c.n;
        std::vector<double> a(ar * ac), b(br * bc), y(c.m * c.n);
        for (auto* v : {&a, &b, &y})
          for (double& x : *v) x = normal(rng);
        const ColumnMajorGemm g = column_major_gemm(ar, ac, ta, br, bc, tb);
        // cuBLASLt's layouts: rows at most the leading dimension, and the buffers' sizes.
        EXPECT_EQ(g.a_rows() * g.a_cols(), br * bc);
        EXPECT_EQ(g.b_rows() * g.b_cols(), ar * ac);
        EXPECT_LE(g.a_rows(), g.lda);
        EXPECT_LE(g.b_rows(), g.ldb);
        EXPECT_EQ(g.m * g.n, c.m * c.n);
        std::vector<double> d = y;
        column_major_reference(g, b, a, d, 0.5, -1.25);
        for (int64_t i = 0; i < c.m; ++i)
          for (int64_t j = 0; j < c.n; ++j) {
            double sum = 0;
            for (int64_t p = 0; p < c.k; ++p)
              sum += (ta ? a[p * ac + i] : a[i * ac + p]) * (tb ? b[j * bc + p] : b[p * bc + j]);
            EXPECT_NEAR(d[i * c.n + j], 0.5 * sum - 1.25 * y[i * c.n + j], 1e-12)
                << c.m << "x" << c.k << "x" << c.n << " ta " << ta << " tb " << tb << " at " << i << "," << j;
          }
      }
}

}  // namespace
}  // namespace kervan
