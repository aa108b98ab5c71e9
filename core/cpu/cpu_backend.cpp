#include "core/cpu/cpu_backend.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "core/cpu/gemm.h"
#include "core/cpu/host_threads.h"
#include "core/error.h"

namespace kervan {

std::unique_ptr<Backend> make_cpu_backend() {
  return std::make_unique<CpuBackend>();
}

RowsCols rows_cols(const Tensor& t) {
  const int64_t cols = t.ndim() == 0 ? 1 : t.dim(-1);
  return {cols == 0 ? 0 : t.numel() / cols, cols};
}

int CpuBackend::num_threads() const {
  return host_threads();
}

static void free_aligned(void* p) {
  std::free(p);
}

Tensor CpuBackend::empty(const Shape& shape, DType dtype) {
  const size_t bytes = std::max<size_t>(shape_numel(shape) * dtype_size(dtype), 1);
  const size_t rounded = (bytes + 63) / 64 * 64;  // 64-byte aligned rows for SIMD and GEMM
  void* p = std::aligned_alloc(64, rounded);
  if (!p)
    throw EnvironmentError("allocate",
                           "a " + std::string(dtype_name(dtype)) + " tensor of shape " + shape_str(shape),
                           "out of memory (" + std::to_string(rounded / 1'000'000) + " MB more did not fit)");
  return Tensor(std::make_shared<Storage>(p, rounded, Device::CPU, free_aligned), 0, shape, dtype);
}

void CpuBackend::fill(Tensor& t, float value) {
  if (t.dtype() == DType::I32) {
    int32_t* p = t.data<int32_t>();
    const int32_t v = static_cast<int32_t>(value);
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = v;
    return;
  }
  float* p = t.data<float>();
  const int64_t n = t.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = value;
}

void CpuBackend::copy_from_host(Tensor& dst, const void* src) {
  std::memcpy(dst.raw(), src, dst.bytes());
}

void CpuBackend::copy_to_host(void* dst, const Tensor& src) {
  std::memcpy(dst, src.raw(), src.bytes());
}

void CpuBackend::copy(Tensor& dst, const Tensor& src) {
  KERVAN_CHECK(dst.numel() == src.numel() && dst.dtype() == src.dtype(), "copy sizes");
  std::memmove(dst.raw(), src.raw(), src.bytes());
}

void CpuBackend::matmul(Tensor& y, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, float alpha,
                        float beta) {
  KERVAN_CHECK(a.ndim() == 2 && b.ndim() == 2 && y.ndim() == 2, "matmul takes 2-D tensors");
  const int64_t m = trans_a ? a.dim(1) : a.dim(0);
  const int64_t k = trans_a ? a.dim(0) : a.dim(1);
  const int64_t kb = trans_b ? b.dim(1) : b.dim(0);
  const int64_t n = trans_b ? b.dim(0) : b.dim(1);
  KERVAN_CHECK(
      k == kb && y.dim(0) == m && y.dim(1) == n,
      "matmul shapes " + shape_str(a.shape()) + " x " + shape_str(b.shape()) + " -> " + shape_str(y.shape()));
  KERVAN_CHECK(!overlaps(y, a) && !overlaps(y, b), "matmul output aliases an input");
  sgemm(trans_a, trans_b, m, n, k, alpha, a.data<float>(), a.dim(1), b.data<float>(), b.dim(1), beta,
        y.data<float>(), n, omp_in_parallel() ? 1 : omp_get_max_threads());
}

void CpuBackend::add_bias(Tensor& y, const Tensor& bias) {
  const auto [rows, cols] = rows_cols(y);
  KERVAN_CHECK(bias.numel() == cols, "bias size");
  float* py = y.data<float>();
  const float* pb = bias.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float* row = py + r * cols;
    for (int64_t c = 0; c < cols; ++c) row[c] += pb[c];
  }
}

// Column sums, split over threads by column range so each sum has one fixed order.
void CpuBackend::bias_backward(Tensor& dbias, const Tensor& dy) {
  const auto [rows, cols] = rows_cols(dy);
  KERVAN_CHECK(dbias.numel() == cols, "bias grad size");
  const float* pdy = dy.data<float>();
  float* pdb = dbias.data<float>();
#pragma omp parallel
  {
    int64_t c0, c1;
    chunk_range(cols, omp_get_num_threads(), omp_get_thread_num(), c0, c1);
    std::vector<float> acc(c1 - c0, 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = pdy + r * cols;
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
    }
    for (int64_t c = c0; c < c1; ++c) pdb[c] += acc[c - c0];
  }
}

void CpuBackend::add(Tensor& out, const Tensor& a, const Tensor& b) {
  KERVAN_CHECK(out.numel() == a.numel() && a.numel() == b.numel(), "add sizes");
  float* po = out.data<float>();
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  const int64_t n = out.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) po[i] = pa[i] + pb[i];
}

double CpuBackend::sum_squares(const Tensor& t) {
  const float* p = t.data<float>();
  const int64_t n = t.numel();
  std::vector<double> partial(host_threads(), 0.0);
#pragma omp parallel num_threads(static_cast <int>(partial.size()))
  {
    int64_t i0, i1;
    chunk_range(n, omp_get_num_threads(), omp_get_thread_num(), i0, i1);
    double s = 0.0;
    for (int64_t i = i0; i < i1; ++i) s += static_cast<double>(p[i]) * p[i];
    partial[omp_get_thread_num()] = s;
  }
  double total = 0.0;
  for (double s : partial) total += s;  // fixed order: reproducible
  return total;
}

}  // namespace kervan
