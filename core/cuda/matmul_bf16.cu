// The CUDA backend's matmul under Precision::BF16 (CudaBackend::matmul; Precision::F32 stays cuBLAS
// SGEMM in cuda_backend.cu):
//   y [m, n] = alpha op(a) op(b) + beta y,  a and b rounded to bf16 first, products and sums in fp32
// with the same transposes, alpha and beta as the fp32 path; y stays fp32.
//
// Design: mixed precision as autocast does it. Weights, gradients, AdamW's moments and every stored
// activation stay fp32 (the master copy): the optimizer adds updates far smaller than the spacing of
// bf16 values near a weight (2^-8 to 2^-7 of it), which a bf16 weight would lose, and every kernel
// besides the products (norms, softmax, cross-entropy, AdamW) keeps computing in fp32 as its CPU
// twin does. Only the two operands of each product are rounded, once per operand per product: a
// cast kernel (round to nearest even, __float2bfloat16_rn) writes them into one backend-owned device
// workspace (grown to the largest product so far and reused; core/matmul_workspace.h lays it out),
// and cublasLtMatmul multiplies bf16 A and B into fp32 C = D with CUBLAS_COMPUTE_32F on the tensor
// cores. Rounding to bf16's 8 significant bits is a relative error of at most 2^-8 per operand,
// about 1.6e-3 on average, so a product lands about 2e-3 from the fp32 one on random data
// (METHOD.md's bf16 band, 1e-3 to 1e-2; tests/gpu/test_matmul_bf16.cpp checks both ends).
//
// Cost of the casts: each cast element is 4 bytes read and 2 written. At gpt2-small's shapes
// (micro-batch 16, seq 1024, d_model 768, padded vocabulary 50304) a training step has 12 products
// in each of its 12 layers (4 linears: forward, dX and dW) plus the LM head's 3; their operands come
// to 6.75 G elements, 40.5 GB of cast traffic: 9.4 ms at the H200's ~4.3 TB/s, against 12.1 TFLOP
// of products: 15.4 ms at ~790 TFLOP/s dense bf16. So the casts add about 60% to the products' time
// at those rates (the q|k|v projection's forward: 20 us of casts beside a 73 us product; the LM
// head's backward casts the [16384, 50304] logits gradient twice, 4.9 GB of traffic each time, and
// its bf16 copy sizes the operand workspace: 1.73 GB). Backward rounds dY once for both dW and dX
// (Backend::linear_backward, CudaBackend's override: run() with a_rounded): 9C rows' worth a layer
// and the logits gradient, 2.18 G of the 6.75 G elements, 13.1 GB: 3.0 ms of the 9.4, leaving 6.4
// ms, ~40% on top of the products. The way further down is for the kernels that produce an operand
// (LayerNorm, GELU, attention, AdamW for the weights) to write its bf16 copy as well: then the
// casts' traffic mostly disappears into writes those kernels do anyway.
//
// Row-major to column-major as the SGEMM path maps them: cuBLASLt's A is our b, its B our a, its D
// our y (core/column_major_gemm.h derives it; tests/unit checks it against the CPU's matmul).
//
// Plans: the descriptors and the heuristic's first algorithm are made once per LtShape (matmul_bf16.h)
// and kept. cuBLASLt gets a 32 MiB workspace of its own (core/matmul_workspace.h). Deterministic mode
// (Backend::set_deterministic) asks the heuristic for algorithms without a split-K reduction
// (CUBLASLT_REDUCTION_SCHEME_NONE): each element's dot product is then one sequence in one block,
// whose order depends on the algorithm alone, not on how the partial sums of several blocks meet
// (NVIDIA's advice for reproducible cuBLASLt results; NVIDIA/CUDALibrarySamples#243); it may cost
// speed on products with small m x n and large k (the weight gradients). Every cuBLASLt call is
// checked and a failure names the call and the shapes.
#include <cuda_bf16.h>

#include <cstdint>
#include <string>

#include "core/cuda/cuda_check.h"
#include "core/cuda/device_allocator.h"
#include "core/cuda/matmul_bf16.h"
#include "core/matmul_workspace.h"

namespace kervan::cuda {

namespace {

// dst[i] = bf16(src[i]), round to nearest even (NaN stays NaN). Four elements a thread; dst is
// 256-byte aligned, so a full group's 8-byte store is aligned; a 16-byte aligned src loads a float4.
template <bool kVectorLoad>
__global__ void round_to_bf16(__nv_bfloat16* dst, const float* src, int64_t n) {
  const int64_t i = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) * 4;
  if (i >= n) return;
  if (i + 4 <= n) {
    float4 v;
    if constexpr (kVectorLoad) {
      v = *reinterpret_cast<const float4*>(src + i);
    } else {
      v = make_float4(src[i], src[i + 1], src[i + 2], src[i + 3]);
    }
    __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    *reinterpret_cast<uint2*>(dst + i) =  // one 8-byte store
        make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
    return;
  }
  for (int64_t j = i; j < n; ++j) dst[j] = __float2bfloat16_rn(src[j]);
}

void launch_round(__nv_bfloat16* dst, const float* src, int64_t n, cudaStream_t stream,
                  const std::string& shapes) {
  const unsigned blocks = blocks_for((n + 3) / 4, 256);
  if (reinterpret_cast<uintptr_t>(src) % 16 == 0)
    round_to_bf16<true><<<blocks, 256, 0, stream>>>(dst, src, n);
  else
    round_to_bf16<false><<<blocks, 256, 0, stream>>>(dst, src, n);
  check_launch("round_to_bf16", std::to_string(n) + " elements, operand of " + shapes);
}

template <typename T>
void set_attr(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, T v, const char* name,
              const std::string& shapes) {
  check(cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof v), "cublasLtMatmulDescSetAttribute",
        std::string(name) + " for " + shapes);
}

template <typename T>
void set_pref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr, T v, const char* name,
              const std::string& shapes) {
  check(cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof v), "cublasLtMatmulPreferenceSetAttribute",
        std::string(name) + " for " + shapes);
}

}  // namespace

Bf16Matmul::Bf16Matmul(cudaStream_t stream) : stream_(stream) {
  check(cublasLtCreate(&lt_), "cublasLtCreate");
  lt_workspace_ = device_allocator().allocate(kCublasLtWorkspaceBytes, "cuBLASLt's workspace");
}

Bf16Matmul::~Bf16Matmul() {
  // No checks: a destructor must not throw. The stream may still use the buffers: wait first.
  cudaStreamSynchronize(stream_);
  for (auto& [shape, p] : plans_) destroy(p);
  if (operands_) device_allocator().release(operands_);
  if (lt_workspace_) device_allocator().release(lt_workspace_);
  if (lt_) cublasLtDestroy(lt_);
}

void* Bf16Matmul::operands(int64_t bytes) {
  if (bytes > operand_bytes_) {
    // The old block goes back to the caching allocator; work queued on this stream that still
    // reads it runs before anything later allocated there (one stream: stream order).
    if (operands_) device_allocator().release(operands_);
    operands_ = nullptr;
    operand_bytes_ = 0;  // so that a failed allocation below leaves no dangling block
    rounded_a_ = nullptr;
    operands_ = device_allocator().allocate(static_cast<size_t>(bytes), "bf16 copies of a matmul's operands");
    operand_bytes_ = bytes;
  }
  return operands_;
}

void Bf16Matmul::reserve(int64_t a_elems, int64_t b_elems) {
  operands(bf16_operand_layout(a_elems, b_elems).bytes);
}

void Bf16Matmul::destroy(Plan& p) {
  if (p.a) cublasLtMatrixLayoutDestroy(p.a);
  if (p.b) cublasLtMatrixLayoutDestroy(p.b);
  if (p.d) cublasLtMatrixLayoutDestroy(p.d);
  if (p.desc) cublasLtMatmulDescDestroy(p.desc);
}

const Bf16Matmul::Plan& Bf16Matmul::plan_for(const LtShape& s, const std::string& shapes) {
  if (auto it = plans_.find(s); it != plans_.end()) return it->second;
  Plan p;
  cublasLtMatmulPreference_t pref = nullptr;
  struct Cleanup {  // frees what was made when a call below throws
    Plan& p;
    cublasLtMatmulPreference_t& pref;
    bool keep_plan = false;
    ~Cleanup() {
      if (pref) cublasLtMatmulPreferenceDestroy(pref);
      if (!keep_plan) destroy(p);
    }
  } cleanup{p, pref};

  const ColumnMajorGemm& g = s.g;
  check(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate",
        shapes);
  set_attr<int32_t>(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, "TRANSA",
                    shapes);
  set_attr<int32_t>(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, "TRANSB",
                    shapes);
  check(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, g.a_rows(), g.a_cols(), g.lda),
        "cublasLtMatrixLayoutCreate", "A of " + shapes);
  check(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, g.b_rows(), g.b_cols(), g.ldb),
        "cublasLtMatrixLayoutCreate", "B of " + shapes);
  check(cublasLtMatrixLayoutCreate(&p.d, CUDA_R_32F, g.m, g.n, g.ldd), "cublasLtMatrixLayoutCreate",
        "D of " + shapes);

  check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate", shapes);
  set_pref<uint64_t>(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, kCublasLtWorkspaceBytes,
                     "MAX_WORKSPACE_BYTES", shapes);
  set_pref<uint32_t>(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, kMatmulOperandAlign, "MIN_ALIGNMENT_A",
                     shapes);
  set_pref<uint32_t>(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, kMatmulOperandAlign, "MIN_ALIGNMENT_B",
                     shapes);
  set_pref<uint32_t>(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, static_cast<uint32_t>(s.align_d),
                     "MIN_ALIGNMENT_C", shapes);
  set_pref<uint32_t>(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, static_cast<uint32_t>(s.align_d),
                     "MIN_ALIGNMENT_D", shapes);
  if (s.deterministic)
    set_pref<uint32_t>(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, CUBLASLT_REDUCTION_SCHEME_NONE,
                       "REDUCTION_SCHEME_MASK", shapes);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  check(cublasLtMatmulAlgoGetHeuristic(lt_, p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &found),
        "cublasLtMatmulAlgoGetHeuristic", shapes);
  if (found == 0 || result.state != CUBLAS_STATUS_SUCCESS)
    throw EnvironmentError("cublasLtMatmulAlgoGetHeuristic",
                           shapes + " (bf16 operands; cuBLASLt's m " + std::to_string(g.m) + " n " +
                               std::to_string(g.n) + " k " + std::to_string(g.k) + ", output aligned to " +
                               std::to_string(s.align_d) + " bytes" +
                               (s.deterministic ? ", no split-K" : "") + ")",
                           "cuBLASLt offers no algorithm for this product");
  p.algo = result.algo;
  cleanup.keep_plan = true;
  return plans_.emplace(s, p).first->second;
}

void Bf16Matmul::run(Tensor& y, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, float alpha,
                     float beta, bool deterministic, const std::string& shapes, bool a_rounded) {
  const Bf16OperandLayout layout = bf16_operand_layout(a.numel(), b.numel());
  if (a_rounded)  // the copy must be this very tensor's, in a workspace that has not moved since
    KERVAN_CHECK(rounded_a_ == a.raw() && rounded_a_elems_ == a.numel() && layout.bytes <= operand_bytes_,
                 "bf16 matmul: the rounded operand of " + shapes + " is not the previous product's");
  char* base = static_cast<char*>(operands(layout.bytes));
  auto* a16 = reinterpret_cast<__nv_bfloat16*>(base);
  auto* b16 = reinterpret_cast<__nv_bfloat16*>(base + layout.b_offset);
  if (!a_rounded) launch_round(a16, a.data<float>(), a.numel(), stream_, shapes);
  rounded_a_ = a.raw();
  rounded_a_elems_ = a.numel();
  launch_round(b16, b.data<float>(), b.numel(), stream_, shapes);

  LtShape s;
  s.g = column_major_gemm(a.dim(0), a.dim(1), trans_a, b.dim(0), b.dim(1), trans_b);
  s.beta_zero = beta == 0.0f;
  s.align_d = address_alignment(reinterpret_cast<uintptr_t>(y.raw()));
  s.deterministic = deterministic;
  const Plan& p = plan_for(s, shapes);
  check(cublasLtMatmul(lt_, p.desc, &alpha, b16, p.a, a16, p.b, &beta, y.raw(), p.d, y.raw(), p.d, &p.algo,
                       lt_workspace_, kCublasLtWorkspaceBytes, stream_),
        "cublasLtMatmul", shapes + " (bf16 operands)");
}

}  // namespace kervan::cuda
