// Token + position embedding and row gathers (twins of core/cpu/embedding.cpp):
//   embedding_forward            out[b,t,:] = wte[tok[b,t], :] + wpe[t, :]   (tok < 0: wpe row only)
//   gather_rows                  out[n,:] (+)= table[ids[n], :]              (id < 0: zero row / nothing)
//   scatter_add_rows             table[ids[n], :] += scale * rows[n, :]      (id < 0 skipped)
//   position_embedding_backward  dwpe[t, :] += sum_b dout[b, t, :]
// scatter_add_rows has repeated ids, so instead of atomics (whose order changes run to run) each
// thread owns one column and walks the rows in order, as the CPU twin's threads do: deterministic.
#include "core/cuda/backend_impl.h"
#include "core/cuda/column_sum.cuh"

namespace kervan {

using namespace cuda;

namespace {

__global__ void embedding_kernel(float* out, const int32_t* tok, const float* wte, const float* wpe,
                                 int64_t BT, int64_t T, int64_t C, int64_t V) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= BT * C) return;
  const int64_t bt = i / C, c = i % C;
  const int32_t id = tok[bt];
  KERVAN_DEVICE_ASSERT(id < V);
  const float p = wpe[(bt % T) * C + c];
  out[i] = id < 0 ? p : wte[static_cast<int64_t>(id) * C + c] + p;
}

__global__ void gather_kernel(float* out, const float* table, const int32_t* ids, int64_t N, int64_t C,
                              int64_t rows, bool accumulate) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= N * C) return;
  const int64_t n = i / C, c = i % C;
  const int32_t id = ids[n];
  KERVAN_DEVICE_ASSERT(id < rows);
  if (id < 0) {
    if (!accumulate) out[i] = 0.0f;
    return;
  }
  const float v = table[static_cast<int64_t>(id) * C + c];
  out[i] = accumulate ? out[i] + v : v;
}

__global__ void scatter_add_kernel(float* table, const float* rows, const int32_t* ids, int64_t N, int64_t C,
                                   int64_t table_rows, float scale) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  for (int64_t n = 0; n < N; ++n) {
    const int32_t id = ids[n];
    if (id < 0) continue;
    KERVAN_DEVICE_ASSERT(id < table_rows);
    table[static_cast<int64_t>(id) * C + c] += scale * rows[n * C + c];
  }
}

}  // namespace

void CudaBackend::embedding_forward(Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor& wpe) {
  const int64_t B = tokens.dim(0), T = tokens.dim(1), C = wte.dim(1);
  const std::string shapes = "tokens " + shape_str(tokens.shape()) + ", wte " + shape_str(wte.shape()) +
                             ", wpe " + shape_str(wpe.shape()) + ", out " + shape_str(out.shape());
  KERVAN_CHECK(
      tokens.ndim() == 2 && out.numel() == B * T * C && wpe.ndim() == 2 && wpe.dim(0) >= T && wpe.dim(1) == C,
      "embedding shapes: " + shapes);
  if (B * T * C == 0) return;
  embedding_kernel<<<blocks_for(B * T * C, 256), 256, 0, stream()>>>(
      out.data<float>(), tokens.data<int32_t>(), wte.data<float>(), wpe.data<float>(), B * T, T, C,
      wte.dim(0));
  check_launch("embedding_forward", shapes);
}

void CudaBackend::gather_rows(Tensor& out, const Tensor& table, const Tensor& ids, bool accumulate) {
  const int64_t N = ids.numel(), C = table.dim(1);
  const std::string shapes = "table " + shape_str(table.shape()) + ", ids " + shape_str(ids.shape()) +
                             ", out " + shape_str(out.shape());
  KERVAN_CHECK(table.ndim() == 2 && out.numel() == N * C, "gather_rows shapes: " + shapes);
  KERVAN_CHECK(!overlaps(out, table), "gather_rows: out aliases the table");
  if (N * C == 0) return;
  gather_kernel<<<blocks_for(N * C, 256), 256, 0, stream()>>>(
      out.data<float>(), table.data<float>(), ids.data<int32_t>(), N, C, table.dim(0), accumulate);
  check_launch("gather_rows", shapes);
}

void CudaBackend::scatter_add_rows(Tensor& table, const Tensor& rows, const Tensor& ids, float scale) {
  const int64_t N = ids.numel(), C = table.dim(1);
  KERVAN_CHECK(rows.numel() == N * C, "scatter_add_rows shapes");
  KERVAN_CHECK(!overlaps(table, rows), "scatter_add_rows: the table aliases the rows");
  if (N * C == 0) return;
  scatter_add_kernel<<<blocks_for(C, 128), 128, 0, stream()>>>(
      table.data<float>(), rows.data<float>(), ids.data<int32_t>(), N, C, table.dim(0), scale);
  check_launch("scatter_add_rows", "table " + shape_str(table.shape()) + ", rows " + shape_str(rows.shape()));
}

void CudaBackend::position_embedding_backward(Tensor& dwpe, const Tensor& dout) {
  KERVAN_CHECK(
      dout.ndim() == 3 && dwpe.ndim() == 2 && dwpe.dim(0) >= dout.dim(1) && dwpe.dim(1) == dout.dim(2),
      "position embedding backward shapes: dout " + shape_str(dout.shape()) + ", dwpe " +
          shape_str(dwpe.shape()));
  // A column sum of dout viewed as [B, T*C] into dwpe's first T rows.
  const int64_t B = dout.dim(0), TC = dout.dim(1) * dout.dim(2);
  const float* p = dout.data<float>();
  column_sum(
      *this, dwpe.data<float>(), B, TC, [=] __device__(int64_t b, int64_t i) { return p[b * TC + i]; },
      "position_embedding_backward");
}

}  // namespace kervan
