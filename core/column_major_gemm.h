#pragma once
// How a row-major product y [m, n] = alpha op(a) op(b) + beta y maps onto a column-major BLAS
// (cuBLAS, cuBLASLt: D [M, N] = alpha op(A) [M, K] op(B) [K, N] + beta C, each stored matrix
// element (i, j) at i + j * ld). A row-major [r, c] buffer, read column-major, is its c-by-r
// transpose with leading dimension c; row-major y is column-major y^T, and y^T = op(b)^T op(a)^T.
// So the BLAS's A is our b, its B is our a, each transposed iff ours is, and its (M, N, K) is our
// (n, m, k). The CUDA backend's bf16 matmul passes these to cuBLASLt (core/cuda/matmul_bf16.cu);
// tests/unit/test_matmul_workspace.cpp evaluates them as the BLAS would and compares with y.
#include <cstdint>

namespace kervan {

struct ColumnMajorGemm {
  int64_t m = 0, n = 0, k = 0;            // the BLAS's M, N, K
  bool trans_a = false, trans_b = false;  // op(A), op(B)
  int64_t lda = 0, ldb = 0, ldd = 0;      // A (our b), B (our a), D (our y)
  // The stored matrices' rows and columns, as cuBLASLt's matrix layouts take them.
  int64_t a_rows() const { return trans_a ? k : m; }
  int64_t a_cols() const { return trans_a ? m : k; }
  int64_t b_rows() const { return trans_b ? n : k; }
  int64_t b_cols() const { return trans_b ? k : n; }
};

// a is [a_rows, a_cols] and b [b_rows, b_cols], row-major and contiguous; y [m, n] likewise.
inline ColumnMajorGemm column_major_gemm(int64_t a_rows, int64_t a_cols, bool trans_a, int64_t b_rows,
                                         int64_t b_cols, bool trans_b) {
  ColumnMajorGemm g;
  g.m = trans_b ? b_rows : b_cols;  // our n
  g.n = trans_a ? a_cols : a_rows;  // our m
  g.k = trans_a ? a_rows : a_cols;
  g.trans_a = trans_b;
  g.trans_b = trans_a;
  g.lda = b_cols;
  g.ldb = a_cols;
  g.ldd = g.m;
  return g;
}

}  // namespace kervan
