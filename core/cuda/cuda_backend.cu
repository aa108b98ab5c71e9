// The CUDA backend's memory, dense algebra and device set-up:
//   matmul        y = alpha op(a) op(b) + beta y        (cuBLAS SGEMM, fp32; row-major operands
//                 passed as the column-major transposes: y^T = op(b)^T op(a)^T; under
//                 Precision::BF16 cuBLASLt on bf16 copies of a and b: matmul_bf16.cu)
//   add_bias      y[n, c] += bias[c]
//   bias_backward dbias[c] += sum_n dy[n, c]             (column_sum.cuh, deterministic)
//   add           out = a + b
//   sum_squares   sum_i t_i^2 in double                  (fixed grid, fixed-order tree: deterministic)
#include <cstring>
#include <string>

#include "core/cuda/backend_impl.h"
#include "core/cuda/column_sum.cuh"
#include "core/cuda/device_allocator.h"
#include "core/cuda/matmul_bf16.h"

namespace kervan {

using namespace cuda;

CudaAvailability cuda_availability() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err == cudaErrorInsufficientDriver)  // also what a machine with no NVIDIA driver at all reports
    return {false, "no CUDA device: no NVIDIA driver, or one older than this CUDA runtime needs"};
  if (err != cudaSuccess)
    return {false, std::string("no CUDA device: ") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err)};
  if (n == 0) return {false, "no CUDA device: the driver sees none"};
  return {true, ""};
}

std::unique_ptr<Backend> make_cuda_backend() {
  const CudaAvailability a = cuda_availability();
  if (!a.ok) throw UserError(a.reason);
  return std::make_unique<CudaBackend>();
}

int64_t cuda_peak_bytes() {
  return device_allocator().peak_bytes();
}
int64_t cuda_in_use_bytes() {
  return device_allocator().in_use_bytes();
}

DeviceMemory cuda_memory_info() {
  const CudaAvailability a = cuda_availability();
  if (!a.ok) throw UserError(a.reason);
  size_t free = 0, total = 0;
  check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
  return {static_cast<int64_t>(free), static_cast<int64_t>(total)};
}

void cuda_copy_bytes(void* dst, const void* src, size_t bytes) {
  // The backend computes on its own non-blocking stream, which a plain cudaMemcpy does not wait for.
  const std::string what = "a one-rank collective of " + std::to_string(bytes) + " bytes";
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize", what);
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault), "cudaMemcpy", what);
  // A device-to-device cudaMemcpy may return before it is done, on the legacy stream, which the
  // backend's non-blocking stream does not wait for: finish it before any kernel reads dst.
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize", what);
}

CudaBackend::CudaBackend() {
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  check(cublasCreate(&cublas_), "cublasCreate");
  check(cublasSetStream(cublas_, stream_), "cublasSetStream");
  // Plain fp32 arithmetic (no TF32) so that results match the CPU backend within fp32 rounding.
  check(cublasSetMathMode(cublas_, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
}

CudaBackend::~CudaBackend() {
  // No checks here: a destructor must not throw, and at exit the runtime may be going away.
  bf16_.reset();  // before the stream it waits for goes
  if (cublas_) cublasDestroy(cublas_);
  if (stream_) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
}

namespace cuda {
RowsCols rows_cols(const Tensor& t) {
  const int64_t cols = t.ndim() == 0 ? 1 : t.dim(-1);
  return {cols == 0 ? 0 : t.numel() / cols, cols};
}

__global__ void column_sum_finish(float* out, const float* partial, int64_t C, int chunks) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  float s = 0.0f;
  for (int k = 0; k < chunks; ++k) s += partial[k * C + c];
  out[c] += s;
}
}  // namespace cuda

namespace {

void release_device(void* p) {
  device_allocator().release(p);
}

template <typename T>
__global__ void fill_kernel(T* p, int64_t n, T v) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) p[i] = v;
}

__global__ void add_bias_kernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < rows * cols) y[i] += bias[i % cols];
}

__global__ void add_kernel(float* out, const float* a, const float* b, int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

constexpr int kSquaresBlocks = 256, kSquaresThreads = 256;

// Pass 1: each of a fixed number of blocks sums a grid-stride share in double, then a tree over its
// threads; pass 2 (one block) adds the block sums in a fixed tree.
__global__ void sum_squares_partial(double* partial, const float* p, int64_t n) {
  __shared__ double sh[kSquaresThreads];
  double s = 0.0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(kSquaresThreads) + threadIdx.x; i < n;
       i += static_cast<int64_t>(kSquaresBlocks) * kSquaresThreads)
    s += static_cast<double>(p[i]) * p[i];
  sh[threadIdx.x] = s;
  __syncthreads();
  for (int w = kSquaresThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}

__global__ void sum_squares_finish(double* out, const double* partial) {
  __shared__ double sh[kSquaresBlocks];
  sh[threadIdx.x] = partial[threadIdx.x];
  __syncthreads();
  for (int w = kSquaresBlocks / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = sh[0];
}

std::string shape_of(const Tensor& t) {
  return shape_str(t.shape());
}

void check_device(const Tensor& t, const char* what) {
  KERVAN_CHECK(t.device() == Device::CUDA,
               std::string(what) + ": a host tensor " + shape_str(t.shape()) + " given to the CUDA backend");
}

}  // namespace

void CudaBackend::synchronize() {
  check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize", "the backend's stream");
}

Tensor CudaBackend::empty(const Shape& shape, DType dtype) {
  const size_t bytes = shape_numel(shape) * dtype_size(dtype);
  const std::string what = "a " + std::string(dtype_name(dtype)) + " tensor of shape " + shape_str(shape);
  void* p = device_allocator().allocate(bytes, what.c_str());
  return Tensor(std::make_shared<Storage>(p, DeviceAllocator::round(bytes), Device::CUDA, release_device), 0,
                shape, dtype);
}

void CudaBackend::fill(Tensor& t, float value) {
  check_device(t, "fill");
  const int64_t n = t.numel();
  if (n == 0) return;
  switch (t.dtype()) {
    case DType::F32:
      fill_kernel<<<blocks_for(n, 256), 256, 0, stream_>>>(t.data<float>(), n, value);
      break;
    case DType::I32:
      fill_kernel<<<blocks_for(n, 256), 256, 0, stream_>>>(t.data<int32_t>(), n, static_cast<int32_t>(value));
      break;
    case DType::F64:
      fill_kernel<<<blocks_for(n, 256), 256, 0, stream_>>>(t.data<double>(), n, static_cast<double>(value));
      break;
    default:
      KERVAN_CHECK(false, "fill of a " + std::string(dtype_name(t.dtype())) + " tensor on the CUDA backend");
  }
  check_launch("fill", shape_of(t));
}

// Host copies synchronise the stream: the host buffer may be pageable and reused at once, and
// the caller reads what copy_to_host wrote as soon as it returns.
void CudaBackend::copy_from_host(Tensor& dst, const void* src) {
  check_device(dst, "copy_from_host");
  check(cudaMemcpyAsync(dst.raw(), src, dst.bytes(), cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync",
        "host to device, " + shape_of(dst));
  check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize",
        "after a host-to-device copy of " + shape_of(dst));
}

void CudaBackend::copy_to_host(void* dst, const Tensor& src) {
  check_device(src, "copy_to_host");
  check(cudaMemcpyAsync(dst, src.raw(), src.bytes(), cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync",
        "device to host, " + shape_of(src));
  check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize",
        "after a device-to-host copy of " + shape_of(src));
}

void CudaBackend::copy(Tensor& dst, const Tensor& src) {
  KERVAN_CHECK(dst.numel() == src.numel() && dst.dtype() == src.dtype(), "copy sizes");
  check_device(dst, "copy");
  check_device(src, "copy");
  check(cudaMemcpyAsync(dst.raw(), src.raw(), src.bytes(), cudaMemcpyDeviceToDevice, stream_),
        "cudaMemcpyAsync", "device to device, " + shape_of(src));
}

namespace {

// A product's shapes checked (2-D, agreeing, y aliasing neither input), named for errors.
struct ProductShapes {
  int64_t m, n, k;
  std::string text;
};
ProductShapes check_product(const Tensor& y, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b) {
  KERVAN_CHECK(a.ndim() == 2 && b.ndim() == 2 && y.ndim() == 2, "matmul takes 2-D tensors");
  const int64_t m = trans_a ? a.dim(1) : a.dim(0);
  const int64_t k = trans_a ? a.dim(0) : a.dim(1);
  const int64_t kb = trans_b ? b.dim(1) : b.dim(0);
  const int64_t n = trans_b ? b.dim(0) : b.dim(1);
  std::string text = shape_of(a) + (trans_a ? "^T" : "") + " x " + shape_of(b) + (trans_b ? "^T" : "") + " -> " +
                     shape_of(y);
  KERVAN_CHECK(k == kb && y.dim(0) == m && y.dim(1) == n, "matmul shapes " + text);
  KERVAN_CHECK(!overlaps(y, a) && !overlaps(y, b), "matmul output aliases an input");
  return {m, n, k, std::move(text)};
}

}  // namespace

void CudaBackend::linear_backward(Tensor& dw, Tensor* dx, const Tensor& dy, const Tensor& x, const Tensor& w,
                                  float alpha, float dw_beta) {
  // At bf16, dy is rounded once and its copy serves both products (the workspace is sized for
  // both first, so that growing it for the second cannot drop the first's copy). Empty products
  // and fp32 take the two plain calls.
  if (precision_ != Precision::BF16 || dy.numel() == 0 || x.numel() == 0 || w.numel() == 0)
    return Backend::linear_backward(dw, dx, dy, x, w, alpha, dw_beta);
  const ProductShapes pw = check_product(dw, dy, true, x, false);
  const ProductShapes px = dx ? check_product(*dx, dy, false, w, false) : ProductShapes{};
  if (!bf16_) bf16_ = std::make_unique<Bf16Matmul>(stream_);
  bf16_->reserve(dy.numel(), std::max(x.numel(), dx ? w.numel() : 0));
  bf16_->run(dw, dy, true, x, false, alpha, dw_beta, deterministic_, pw.text, /*a_rounded=*/false);
  if (dx) bf16_->run(*dx, dy, false, w, false, alpha, 0.0f, deterministic_, px.text, /*a_rounded=*/true);
}

void CudaBackend::matmul(Tensor& y, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, float alpha,
                         float beta) {
  const ProductShapes p = check_product(y, a, trans_a, b, trans_b);
  const int64_t m = p.m, n = p.n, k = p.k;
  const std::string& shapes = p.text;
  if (m == 0 || n == 0) return;
  if (k == 0) {  // cuBLAS leaves y untouched when k == 0; the CPU twin scales it by beta
    KERVAN_CHECK(beta == 0.0f || beta == 1.0f, "matmul with k = 0 and beta " + std::to_string(beta));
    if (beta == 0.0f) fill(y, 0.0f);
    return;
  }
  if (precision_ == Precision::BF16) {
    if (!bf16_) bf16_ = std::make_unique<Bf16Matmul>(stream_);
    bf16_->run(y, a, trans_a, b, trans_b, alpha, beta, deterministic_, shapes, /*a_rounded=*/false);
    return;
  }
  const float al = alpha, be = beta;
  check(cublasSgemm(cublas_, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                    static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &al, b.data<float>(),
                    static_cast<int>(b.dim(1)), a.data<float>(), static_cast<int>(a.dim(1)), &be,
                    y.data<float>(), static_cast<int>(n)),
        "cublasSgemm", shapes);
}

void CudaBackend::add_bias(Tensor& y, const Tensor& bias) {
  const auto [rows, cols] = rows_cols(y);
  KERVAN_CHECK(bias.numel() == cols, "bias size");
  if (rows * cols == 0) return;
  add_bias_kernel<<<blocks_for(rows * cols, 256), 256, 0, stream_>>>(y.data<float>(), bias.data<float>(),
                                                                     rows, cols);
  check_launch("add_bias", shape_of(y));
}

void CudaBackend::bias_backward(Tensor& dbias, const Tensor& dy) {
  const RowsCols rc = rows_cols(dy);
  const int64_t rows = rc.rows,
                cols = rc.cols;  // plain copies: a lambda may not capture structured bindings in C++17
  KERVAN_CHECK(dbias.numel() == cols, "bias grad size");
  const float* p = dy.data<float>();
  column_sum(
      *this, dbias.data<float>(), rows, cols,
      [=] __device__(int64_t n, int64_t c) { return p[n * cols + c]; }, "bias_backward");
}

void CudaBackend::add(Tensor& out, const Tensor& a, const Tensor& b) {
  KERVAN_CHECK(out.numel() == a.numel() && a.numel() == b.numel(), "add sizes");
  const int64_t n = out.numel();
  if (n == 0) return;
  add_kernel<<<blocks_for(n, 256), 256, 0, stream_>>>(out.data<float>(), a.data<float>(), b.data<float>(), n);
  check_launch("add", shape_of(out));
}

double CudaBackend::sum_squares(const Tensor& t) {
  Tensor partial = empty({kSquaresBlocks}, DType::F64), total = empty({1}, DType::F64);
  sum_squares_partial<<<kSquaresBlocks, kSquaresThreads, 0, stream_>>>(partial.data<double>(),
                                                                       t.data<float>(), t.numel());
  check_launch("sum_squares_partial", shape_of(t));
  sum_squares_finish<<<1, kSquaresBlocks, 0, stream_>>>(total.data<double>(), partial.data<double>());
  check_launch("sum_squares_finish", shape_of(t));
  double out = 0.0;
  copy_to_host(&out, total);
  return out;
}

}  // namespace kervan
