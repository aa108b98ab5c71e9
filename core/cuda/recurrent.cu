// Fused gate kernels of the recurrent cells, one time step of B rows, one thread per (row, unit)
// (twins of core/cpu/recurrent.cpp; core/layers/recurrent.h has the equations):
//   RNN   h = tanh(xg + hg + b_hh)
//   LSTM  i, f, o = sigmoid(.), g = tanh(.) of xg + hg + b_hh (gates i|f|g|o);  c = f c_prev + i g;  h = o
//   tanh(c) GRU   r, z = sigmoid(xg + hg + b_hh);  hn = hg_n + b_hn;  n = tanh(xg_n + r hn);  h = (1 - z) n +
//   z h_prev
// Backward as in the CPU twin: dgx = d/d(xg), dgh = d/d(hg + b_hh); dh leaves the part of
// d/d(h_prev) that bypasses W_hh (GRU z * dh_total, else 0); LSTM dc becomes d/d(c_prev).
#include "core/cuda/backend_impl.h"

namespace kervan {

using namespace cuda;

namespace {

__device__ __forceinline__ float sigmoid(float v) {
  return 1.0f / (1.0f + expf(-v));
}

int gate_count(RecurrentCell cell) {
  return cell == RecurrentCell::Rnn ? 1 : cell == RecurrentCell::Lstm ? 4 : 3;
}

__global__ void step_forward_kernel(RecurrentCell cell, float* h, float* c, float* saved, const float* xg,
                                    const float* hg, const float* b, const float* h_prev, const float* c_prev,
                                    int64_t B, int64_t H) {
  const int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (k >= B * H) return;
  const int64_t row = k / H, j = k % H;
  if (cell == RecurrentCell::Rnn) {
    h[k] = tanhf(xg[k] + hg[k] + b[j]);
    return;
  }
  if (cell == RecurrentCell::Lstm) {
    const float* x = xg + row * 4 * H;
    const float* r = hg + row * 4 * H;
    float* s = saved + row * 4 * H;
    const float i = sigmoid(x[j] + r[j] + b[j]);
    const float f = sigmoid(x[H + j] + r[H + j] + b[H + j]);
    const float g = tanhf(x[2 * H + j] + r[2 * H + j] + b[2 * H + j]);
    const float o = sigmoid(x[3 * H + j] + r[3 * H + j] + b[3 * H + j]);
    const float cn = f * c_prev[k] + i * g;
    s[j] = i;
    s[H + j] = f;
    s[2 * H + j] = g;
    s[3 * H + j] = o;
    c[k] = cn;
    h[k] = o * tanhf(cn);
    return;
  }
  const float* x = xg + row * 3 * H;
  const float* r = hg + row * 3 * H;
  float* s = saved + row * 4 * H;
  const float rg = sigmoid(x[j] + r[j] + b[j]);
  const float z = sigmoid(x[H + j] + r[H + j] + b[H + j]);
  const float hn = r[2 * H + j] + b[2 * H + j];
  const float n = tanhf(x[2 * H + j] + rg * hn);
  s[j] = rg;
  s[H + j] = z;
  s[2 * H + j] = n;
  s[3 * H + j] = hn;
  h[k] = (1.0f - z) * n + z * h_prev[k];
}

__global__ void step_backward_kernel(RecurrentCell cell, float* gx, float* gh, float* dh, float* dc,
                                     const float* dy, const float* saved, const float* h, const float* h_prev,
                                     const float* c, const float* c_prev, int64_t B, int64_t H) {
  const int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (k >= B * H) return;
  const int64_t row = k / H, j = k % H;
  const float dht = dh[k] + dy[k];
  if (cell == RecurrentCell::Rnn) {
    const float d = dht * (1.0f - h[k] * h[k]);
    gx[k] = d;
    gh[k] = d;
    dh[k] = 0.0f;
    return;
  }
  if (cell == RecurrentCell::Lstm) {
    const float* s = saved + row * 4 * H;
    float* x = gx + row * 4 * H;
    float* r = gh + row * 4 * H;
    const float i = s[j], f = s[H + j], g = s[2 * H + j], o = s[3 * H + j];
    const float tc = tanhf(c[k]);
    const float dct = dc[k] + dht * o * (1.0f - tc * tc);
    const float di = dct * g * i * (1.0f - i);
    const float df = dct * c_prev[k] * f * (1.0f - f);
    const float dg = dct * i * (1.0f - g * g);
    const float dout = dht * tc * o * (1.0f - o);
    x[j] = di;
    x[H + j] = df;
    x[2 * H + j] = dg;
    x[3 * H + j] = dout;
    if (r != x) {
      r[j] = di;
      r[H + j] = df;
      r[2 * H + j] = dg;
      r[3 * H + j] = dout;
    }
    dc[k] = dct * f;
    dh[k] = 0.0f;
    return;
  }
  const float* s = saved + row * 4 * H;
  float* x = gx + row * 3 * H;
  float* r = gh + row * 3 * H;
  const float rg = s[j], z = s[H + j], n = s[2 * H + j], hn = s[3 * H + j];
  const float dan = dht * (1.0f - z) * (1.0f - n * n);
  const float dz = dht * (h_prev[k] - n) * z * (1.0f - z);
  const float dr = dan * hn * rg * (1.0f - rg);
  x[j] = dr;
  x[H + j] = dz;
  x[2 * H + j] = dan;
  r[j] = dr;
  r[H + j] = dz;
  r[2 * H + j] = dan * rg;
  dh[k] = dht * z;
}

const float* ptr_or_null(const Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.data<float>() : nullptr;
}
float* mut_or_null(const Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.data<float>() : nullptr;
}

}  // namespace

void CudaBackend::recurrent_step_forward(RecurrentCell cell, Tensor& h, Tensor& c, Tensor& saved,
                                         const Tensor& xg, const Tensor& hg, const Tensor& b_hh,
                                         const Tensor& h_prev, const Tensor& c_prev) {
  const int64_t H = h.dim(-1), B = h.numel() / H, G = gate_count(cell), GH = G * H;
  KERVAN_CHECK(xg.numel() == B * GH && hg.numel() == B * GH && b_hh.numel() == GH && h_prev.numel() == B * H,
               "recurrent_step_forward shapes");
  if (cell != RecurrentCell::Rnn)
    KERVAN_CHECK(saved.numel() == B * 4 * H, "recurrent_step_forward: saved must be [B, 4H]");
  if (cell == RecurrentCell::Lstm)
    KERVAN_CHECK(c.numel() == B * H && c_prev.numel() == B * H, "recurrent_step_forward: LSTM cell state");
  if (B * H == 0) return;
  step_forward_kernel<<<blocks_for(B * H, 256), 256, 0, stream()>>>(
      cell, h.data<float>(), cell == RecurrentCell::Lstm ? c.data<float>() : nullptr,
      cell == RecurrentCell::Rnn ? nullptr : saved.data<float>(), xg.data<float>(), hg.data<float>(),
      b_hh.data<float>(), h_prev.data<float>(), cell == RecurrentCell::Lstm ? c_prev.data<float>() : nullptr,
      B, H);
  check_launch("recurrent_step_forward", "h " + shape_str(h.shape()) + ", xg " + shape_str(xg.shape()));
}

void CudaBackend::recurrent_step_backward(RecurrentCell cell, Tensor& dgx, Tensor& dgh, Tensor& dh,
                                          Tensor& dc, const Tensor& dy, const Tensor& saved, const Tensor& h,
                                          const Tensor& h_prev, const Tensor& c, const Tensor& c_prev) {
  const int64_t H = h.dim(-1), B = h.numel() / H, G = gate_count(cell), GH = G * H;
  KERVAN_CHECK(dgx.numel() == B * GH && dgh.numel() == B * GH && dh.numel() == B * H && dy.numel() == B * H,
               "recurrent_step_backward shapes");
  if (B * H == 0) return;
  const bool lstm = cell == RecurrentCell::Lstm, gru = cell == RecurrentCell::Gru;
  step_backward_kernel<<<blocks_for(B * H, 256), 256, 0, stream()>>>(
      cell, dgx.data<float>(), dgh.data<float>(), dh.data<float>(), lstm ? mut_or_null(dc) : nullptr,
      dy.data<float>(), cell == RecurrentCell::Rnn ? nullptr : saved.data<float>(), h.data<float>(),
      gru ? ptr_or_null(h_prev) : nullptr, lstm ? ptr_or_null(c) : nullptr,
      lstm ? ptr_or_null(c_prev) : nullptr, B, H);
  check_launch("recurrent_step_backward", "h " + shape_str(h.shape()) + ", dgx " + shape_str(dgx.shape()));
}

}  // namespace kervan
