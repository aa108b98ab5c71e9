// Fused gate kernels of the recurrent cells, one time step of B rows (the GEMMs around them are
// the caller's; core/layers/recurrent.h has the equations). Every element of a row is independent,
// so rows are split over threads and the results do not depend on the thread count.
#include <algorithm>
#include <cmath>

#include "core/cpu/cpu_backend.h"
#include "core/error.h"

namespace kervan {

namespace {

inline float sigmoid(float v) {
  return 1.0f / (1.0f + std::exp(-v));
}

int gate_count(RecurrentCell cell) {
  return cell == RecurrentCell::Rnn ? 1 : cell == RecurrentCell::Lstm ? 4 : 3;
}

// Parallel over rows only when a step is large enough to pay for waking the threads.
constexpr int64_t kParallelElements = 1 << 14;

// One row's gates. The rows are separate functions so that __restrict tells the compiler the
// buffers do not overlap: with seven streams the loops exceed GCC's limit on run-time alias
// checks, and without it they stayed scalar, one expf call per gate.
void lstm_row_forward(int64_t H, const float* __restrict x, const float* __restrict r, const float* __restrict pb,
                      const float* __restrict cp, float* __restrict s, float* __restrict pc, float* __restrict out) {
  for (int64_t j = 0; j < H; ++j) {
    const float i = sigmoid(x[j] + r[j] + pb[j]);
    const float f = sigmoid(x[H + j] + r[H + j] + pb[H + j]);
    const float g = std::tanh(x[2 * H + j] + r[2 * H + j] + pb[2 * H + j]);
    const float o = sigmoid(x[3 * H + j] + r[3 * H + j] + pb[3 * H + j]);
    const float cn = f * cp[j] + i * g;
    s[j] = i;
    s[H + j] = f;
    s[2 * H + j] = g;
    s[3 * H + j] = o;
    pc[j] = cn;
    out[j] = o * std::tanh(cn);
  }
}

void gru_row_forward(int64_t H, const float* __restrict x, const float* __restrict r, const float* __restrict pb,
                     const float* __restrict hp, float* __restrict s, float* __restrict out) {
  for (int64_t j = 0; j < H; ++j) {
    const float rg = sigmoid(x[j] + r[j] + pb[j]);
    const float z = sigmoid(x[H + j] + r[H + j] + pb[H + j]);
    const float hn = r[2 * H + j] + pb[2 * H + j];
    const float n = std::tanh(x[2 * H + j] + rg * hn);
    s[j] = rg;
    s[H + j] = z;
    s[2 * H + j] = n;
    s[3 * H + j] = hn;
    out[j] = (1.0f - z) * n + z * hp[j];
  }
}

// d(gates) into x; dc, dh (zeroed) updated in place.
void lstm_row_backward(int64_t H, const float* __restrict s, const float* __restrict pc, const float* __restrict cp,
                       const float* __restrict pdy, float* __restrict pdh, float* __restrict pdc, float* __restrict x) {
  for (int64_t j = 0; j < H; ++j) {
    const float i = s[j], f = s[H + j], g = s[2 * H + j], o = s[3 * H + j];
    const float dht = pdh[j] + pdy[j];
    const float tc = std::tanh(pc[j]);
    const float dct = pdc[j] + dht * o * (1.0f - tc * tc);
    x[j] = dct * g * i * (1.0f - i);
    x[H + j] = dct * cp[j] * f * (1.0f - f);
    x[2 * H + j] = dct * i * (1.0f - g * g);
    x[3 * H + j] = dht * tc * o * (1.0f - o);
    pdc[j] = dct * f;
    pdh[j] = 0.0f;
  }
}

}  // namespace

void CpuBackend::recurrent_step_forward(RecurrentCell cell, Tensor& h, Tensor& c, Tensor& saved,
                                        const Tensor& xg, const Tensor& hg, const Tensor& b_hh,
                                        const Tensor& h_prev, const Tensor& c_prev) {
  const int64_t H = h.dim(-1), B = h.numel() / H, G = gate_count(cell), GH = G * H;
  KERVAN_CHECK(xg.numel() == B * GH && hg.numel() == B * GH && b_hh.numel() == GH && h_prev.numel() == B * H,
               "recurrent_step_forward shapes");
  const float* px = xg.data<float>();
  const float* ph = hg.data<float>();
  const float* pb = b_hh.data<float>();
  const float* hp = h_prev.data<float>();
  float* out = h.data<float>();
  if (cell == RecurrentCell::Rnn) {
#pragma omp parallel for schedule(static) if (B * H >= kParallelElements)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) out[b * H + j] = std::tanh(px[b * H + j] + ph[b * H + j] + pb[j]);
    return;
  }
  KERVAN_CHECK(saved.numel() == B * 4 * H, "recurrent_step_forward: saved must be [B, 4H]");
  float* ps = saved.data<float>();
  if (cell == RecurrentCell::Lstm) {
    KERVAN_CHECK(c.numel() == B * H && c_prev.numel() == B * H, "recurrent_step_forward: LSTM cell state");
    const float* cp = c_prev.data<float>();
    float* pc = c.data<float>();
#pragma omp parallel for schedule(static) if (B * H >= kParallelElements)
    for (int64_t b = 0; b < B; ++b)
      lstm_row_forward(H, px + b * GH, ph + b * GH, pb, cp + b * H, ps + b * GH, pc + b * H, out + b * H);
    return;
  }
  // GRU
#pragma omp parallel for schedule(static) if (B * H >= kParallelElements)
  for (int64_t b = 0; b < B; ++b)
    gru_row_forward(H, px + b * GH, ph + b * GH, pb, hp + b * H, ps + b * 4 * H, out + b * H);
}

void CpuBackend::recurrent_step_backward(RecurrentCell cell, Tensor& dgx, Tensor& dgh, Tensor& dh, Tensor& dc,
                                         const Tensor& dy, const Tensor& saved, const Tensor& h,
                                         const Tensor& h_prev, const Tensor& c, const Tensor& c_prev) {
  const int64_t H = h.dim(-1), B = h.numel() / H, G = gate_count(cell), GH = G * H;
  KERVAN_CHECK(dgx.numel() == B * GH && dgh.numel() == B * GH && dh.numel() == B * H && dy.numel() == B * H,
               "recurrent_step_backward shapes");
  float* gx = dgx.data<float>();
  float* gh = dgh.data<float>();
  float* pdh = dh.data<float>();
  const float* pdy = dy.data<float>();
  const float* ph = h.data<float>();
  if (cell == RecurrentCell::Rnn) {
#pragma omp parallel for schedule(static) if (B * H >= kParallelElements)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const float d = (pdh[k] + pdy[k]) * (1.0f - ph[k] * ph[k]);
        gx[k] = d;
        gh[k] = d;
        pdh[k] = 0.0f;
      }
    return;
  }
  const float* ps = saved.data<float>();
  if (cell == RecurrentCell::Lstm) {
    const float* pc = c.data<float>();
    const float* cp = c_prev.data<float>();
    float* pdc = dc.data<float>();
#pragma omp parallel for schedule(static) if (B * H >= kParallelElements)
    for (int64_t b = 0; b < B; ++b) {
      float* x = gx + b * GH;
      lstm_row_backward(H, ps + b * GH, pc + b * H, cp + b * H, pdy + b * H, pdh + b * H, pdc + b * H, x);
      if (gh != gx) std::copy(x, x + GH, gh + b * GH);  // the layer passes one buffer for both
    }
    return;
  }
  // GRU: h = (1 - z) n + z h_prev, n = tanh(an), an = xn + r hn
  const float* hp = h_prev.data<float>();
#pragma omp parallel for schedule(static) if (B * H >= kParallelElements)
  for (int64_t b = 0; b < B; ++b) {
    const float* s = ps + b * 4 * H;
    float* x = gx + b * GH;
    float* r = gh + b * GH;
    for (int64_t j = 0; j < H; ++j) {
      const int64_t k = b * H + j;
      const float rg = s[j], z = s[H + j], n = s[2 * H + j], hn = s[3 * H + j];
      const float dht = pdh[k] + pdy[k];
      const float dan = dht * (1.0f - z) * (1.0f - n * n);
      const float dz = dht * (hp[k] - n) * z * (1.0f - z);
      const float dr = dan * hn * rg * (1.0f - rg);
      x[j] = dr;
      x[H + j] = dz;
      x[2 * H + j] = dan;
      r[j] = dr;
      r[H + j] = dz;
      r[2 * H + j] = dan * rg;
      pdh[k] = dht * z;
    }
  }
}

}  // namespace kervan
