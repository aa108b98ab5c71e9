#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace kervan {

// Hyper-parameters of one AdamW update, already resolved for this step.
struct AdamWStep {
  float lr;
  float beta1, beta2, eps;
  float weight_decay;      // decoupled: p -= lr * wd * p, before the Adam update
  float bias_correction1;  // 1 - beta1^t
  float bias_correction2;  // 1 - beta2^t
  float grad_scale;        // applied to the gradient first (global-norm clipping)
};

// Elementwise activations: GELU with tanh (GPT-2, T5 v1.1's "gelu_new") or erf (BERT), ReLU
// (T5 v1.0), tanh (BERT's pooler).
enum class Activation { GeluTanh, GeluErf, Relu, Tanh };

// Recurrent cells (core/layers/recurrent.h has the equations). Gates are laid out as PyTorch's:
// LSTM i|f|g|o, GRU r|z|n, each block H columns wide.
enum class RecurrentCell { Rnn, Lstm, Gru };

// Columns [col, col + width) of every row of a [B, T, W] tensor: how attention reads q, k and v
// out of fused projections (the fused q|k|v [B, T, 3C]: blocks at 0, C and 2C, width C).
struct ColumnBlock {
  Tensor t;
  int64_t col = 0, width = 0;
  static ColumnBlock of(const Tensor& t, int64_t col, int64_t width) { return {t, col, width}; }
};

// What attention looks at. Key j is visible to query i unless `causal` and j > i, or j is padding
// (j >= key_lengths[b]). `bias` (T5's relative position bias, [NH, Tq, Tk]) is added to the
// scaled scores of every batch row.
struct AttentionSpec {
  int n_head = 1;
  float scale = 1.0f;                   // 1/sqrt(head size) for GPT and BERT; 1 for T5
  bool causal = false;                  // needs Tq == Tk
  const Tensor* key_lengths = nullptr;  // [B] int32, each in [1, Tk]; null: every key is real
  const Tensor* bias = nullptr;         // [NH, Tq, Tk]; null: none
};

// The shapes of attention's saved state and backward scratch are each backend's choice, so that a
// GPU need not store a [Tq, Tk] matrix per head (at seq 1024 and beyond that dominates memory and
// bandwidth). The CPU saves the probabilities P [B, NH, Tq, Tk] and uses a scratch of the same
// shape for dP; the CUDA backend saves each query row's log-sum-exp [B, NH, Tq] and recomputes P in
// backward, flash-style, needing no scratch unless a bias wants dS. Functions of the device rather
// than of a backend object, so that the memory plan can count a device's activations without one.
inline Shape attention_saved_shape(Device device, int64_t B, int64_t n_head, int64_t Tq, int64_t Tk) {
  if (device == Device::CUDA) return {B, n_head, Tq};
  return {B, n_head, Tq, Tk};
}
inline Shape attention_scratch_shape(Device device, int64_t B, int64_t n_head, int64_t Tq, int64_t Tk,
                                     bool bias) {
  if (device == Device::CUDA && !bias) return {0};
  return {B, n_head, Tq, Tk};
}

// What the backend's matrix products (matmul, and attention's products inside its kernels) round
// their operands to. F32: full fp32, so that a device backend matches the CPU within fp32
// rounding. BF16: operands rounded to bfloat16 (8 bits of mantissa), products accumulated in
// fp32: the tensor cores' rate, with errors of about 1e-3 to 1e-2 relative. Either way weights,
// gradients, optimizer state and stored activations stay fp32 (the master copy).
enum class Precision { F32, BF16 };
inline const char* precision_name(Precision p) { return p == Precision::BF16 ? "bf16" : "fp32"; }

// Every kernel the layers, models and optimizer use, one implementation per device (the CPU
// one: OpenBLAS + OpenMP, in core/cpu; the CUDA one in core/cuda). Models call only this interface, so they
// never branch on the device. Tensors are row-major and contiguous; "[N, C]" below means any tensor whose
// last dimension is C, viewed as N rows. Unless a kernel says otherwise, an output must not alias an input
// (implementations check it).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  // The precision of matrix products from now on (F32 at construction). A backend without the
  // other one throws UserError (the CPU computes in fp32 only).
  virtual void set_precision(Precision p) {
    if (p != Precision::F32)
      throw UserError(std::string("precision ") + precision_name(p) + " needs a CUDA device (train.device = \"cuda\")");
  }
  virtual Precision precision() const { return Precision::F32; }
  // Deterministic mode (train.deterministic). Every backend is run-to-run deterministic by default:
  // the same run twice on one machine gives bit-identical results (no kernel accumulates with
  // atomics; the CPU's for a fixed thread count). The mode excludes, besides, what could make the
  // order of a sum depend on more than the shapes: on the CUDA backend, split-K matrix products
  // (core/cuda/matmul_bf16.cu), and any kernel with an atomic fast path must take its ordered one
  // when deterministic() is true. The CPU has nothing to exclude: it accepts the mode and reports
  // true.
  virtual void set_deterministic(bool) {}
  virtual bool deterministic() const { return true; }

  // ---- memory
  virtual Tensor empty(const Shape& shape, DType dtype) = 0;
  Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  virtual void fill(Tensor& t, float value) = 0;
  virtual void copy_from_host(Tensor& dst, const void* src) = 0;
  virtual void copy_to_host(void* dst, const Tensor& src) = 0;
  // dst = src, both on this backend's device, same size and dtype.
  virtual void copy(Tensor& dst, const Tensor& src) = 0;
  // The way host code reads tensor data, whatever the device: a copy in host memory.
  template <typename T>
  std::vector<T> to_host(const Tensor& t) {
    std::vector<T> out(t.numel());
    KERVAN_CHECK(t.dtype() == dtype_of<T>(),
                 "to_host of a " + std::string(dtype_name(t.dtype())) + " tensor");
    copy_to_host(out.data(), t);
    return out;
  }
  template <typename T>
  T item(const Tensor& t) {
    KERVAN_CHECK(t.numel() == 1, "item() of a tensor of " + std::to_string(t.numel()) + " elements");
    return to_host<T>(t)[0];
  }

  // ---- dense algebra
  // y = alpha * op(a) @ op(b) + beta * y, with a, b, y 2-D; op(a) is a^T when trans_a.
  virtual void matmul(Tensor& y, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, float alpha,
                      float beta) = 0;
  // The two products of the backward of y = alpha x w^T (a linear layer, the LM head), which both
  // read dy [N, out]:  dw = alpha dy^T x + dw_beta dw  ([out, in]);  dx = alpha dy w  ([N, in],
  // overwritten; skipped when null). Here two matmul calls; a backend that converts its operands
  // first (CUDA at bf16) converts dy once for both.
  virtual void linear_backward(Tensor& dw, Tensor* dx, const Tensor& dy, const Tensor& x, const Tensor& w,
                               float alpha, float dw_beta) {
    matmul(dw, dy, true, x, false, alpha, dw_beta);
    if (dx) matmul(*dx, dy, false, w, false, alpha, 0.0f);
  }
  // y[n, :] += bias  (y [N, C], bias [C])
  virtual void add_bias(Tensor& y, const Tensor& bias) = 0;
  // dbias += sum_n dy[n, :]
  virtual void bias_backward(Tensor& dbias, const Tensor& dy) = 0;
  // out = a + b (elementwise; out may alias a or b)
  virtual void add(Tensor& out, const Tensor& a, const Tensor& b) = 0;
  // sum of squares in double, for gradient norms
  virtual double sum_squares(const Tensor& t) = 0;

  // ---- layers (see core/layers for the math of each)
  // out[b,t,:] = wte[tokens[b,t], :] + wpe[t, :]; a token < 0 looks up a zero row (under tensor
  // parallelism, ids outside this rank's vocabulary shard).
  virtual void embedding_forward(Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor& wpe) = 0;
  // out[n, :] = table[ids[n], :], or out[n, :] += table[ids[n], :] when `accumulate`; an id < 0
  // gives a zero row (adds nothing). The gradient is scatter_add_rows.
  virtual void gather_rows(Tensor& out, const Tensor& table, const Tensor& ids, bool accumulate) = 0;
  // table[ids[n], :] += scale * rows[n, :]  (ids repeat; the token-embedding gradient; ids < 0
  // are skipped)
  virtual void scatter_add_rows(Tensor& table, const Tensor& rows, const Tensor& ids, float scale) = 0;
  // dwpe[t, :] += sum_b dout[b, t, :]  (the position-embedding gradient; dout [B, T, C])
  virtual void position_embedding_backward(Tensor& dwpe, const Tensor& dout) = 0;
  // out = (x - mean) * rstd * w + b, per row, rstd = 1 / sqrt(var + eps); saves mean and rstd [N]
  // for backward.
  virtual void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                                 const Tensor& b, float eps) = 0;
  // dx = d/dx (overwritten); dw, db accumulated.
  virtual void layernorm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& dout, const Tensor& x,
                                  const Tensor& w, const Tensor& mean, const Tensor& rstd) = 0;
  // RMS norm without bias (T5): out = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) per row,
  // saved [N] for backward.
  virtual void rmsnorm_forward(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& w, float eps) = 0;
  // dx overwritten (must not alias dout); dw accumulated.
  virtual void rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dout, const Tensor& x, const Tensor& w,
                                const Tensor& rstd) = 0;
  // out = act(x), elementwise (out may alias x)
  virtual void activation_forward(Tensor& out, const Tensor& x, Activation act) = 0;
  // dx = act'(x) * dout (overwritten; dx may alias dout)
  virtual void activation_backward(Tensor& dx, const Tensor& x, const Tensor& dout, Activation act) = 0;
  // Gated unit (T5 v1.1's gated GELU): x [N, 2H] holds the gate pre-activation g in columns
  // [0, H) and the linear part l in [H, 2H);  out [N, H] = act(g) * l.
  virtual void gated_activation_forward(Tensor& out, const Tensor& x, Activation act) = 0;
  // dx [N, 2H] overwritten:  dg = dout * l * act'(g),  dl = dout * act(g).
  virtual void gated_activation_backward(Tensor& dx, const Tensor& x, const Tensor& dout, Activation act) = 0;
  // Multi-head attention over column blocks (see AttentionSpec): per batch b and head h, with Q
  // [Tq, hs], K, V [Tk, hs] that head's columns,
  //   S = scale Q K^T + bias_h,  P = softmax(S) over the visible keys (0 elsewhere),  O = P V.
  // out [B, Tq, NH*hs]; `saved` is what backward needs, of attention_saved_shape().
  virtual void attention_forward(Tensor& out, Tensor& saved, const ColumnBlock& q, const ColumnBlock& k,
                                 const ColumnBlock& v, const AttentionSpec& spec) = 0;
  // dq, dk, dv overwritten (they may be blocks of one tensor, not of q, k, v's); dprobs, of
  // attention_scratch_shape(), is scratch which, when spec.bias is set, holds dS = dLoss/dS
  // [B, NH, Tq, Tk] on return (every entry; the bias gradient is its sum over b). `out` is
  // forward's output O [B, Tq, NH*hs] (the layers keep it as the output projection's input): a
  // backend that recomputes P may take D_i = sum_j P_ij dP_ij as rowsum(dO_i * O_i) from it.
  virtual void attention_backward(const ColumnBlock& dq, const ColumnBlock& dk, const ColumnBlock& dv,
                                  Tensor& dprobs, const Tensor& dout, const Tensor& out, const ColumnBlock& q,
                                  const ColumnBlock& k, const ColumnBlock& v, const Tensor& saved,
                                  const AttentionSpec& spec) = 0;
  // The shapes of attention's saved state and backward scratch, this backend's choice (the free
  // functions below).
  Shape attention_saved_shape(int64_t B, int64_t n_head, int64_t Tq, int64_t Tk) const {
    return kervan::attention_saved_shape(device(), B, n_head, Tq, Tk);
  }
  Shape attention_scratch_shape(int64_t B, int64_t n_head, int64_t Tq, int64_t Tk, bool bias) const {
    return kervan::attention_scratch_shape(device(), B, n_head, Tq, Tk, bias);
  }
  // T5's relative position bias: bias[h, i, j] = table[buckets[i, j], h]  (table [NB, NH],
  // buckets [Tq, Tk] int32, bias [NH, Tq, Tk]).
  virtual void relative_bias_forward(Tensor& bias, const Tensor& table, const Tensor& buckets) = 0;
  // dtable[k, h] += sum over (i, j) with buckets[i, j] == k of dbias[h, i, j].
  virtual void relative_bias_backward(Tensor& dtable, const Tensor& dbias, const Tensor& buckets) = 0;
  // losses[n] = -log softmax(logits[n, :vocab])[targets[n]]; columns >= vocab are padding and
  // never predicted. Targets < 0 are ignored (loss 0).
  virtual void cross_entropy_forward(Tensor& losses, const Tensor& logits, const Tensor& targets,
                                     int64_t vocab) = 0;
  // dlogits[n, j] = dloss * (softmax_j - [j == target]) for j < vocab, 0 for padding columns.
  // dlogits may alias logits (the logits are not needed after this).
  virtual void cross_entropy_backward(Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                                      int64_t vocab, float dloss) = 0;
  // Vocabulary-parallel cross-entropy (tensor parallelism): this rank holds columns
  // [col0, col0 + Vl) of the global logits z [N, Vp], of which the first `valid` are real tokens
  // (global index < vocab). With m_n = max_j z_nj and s_n = sum_j exp(z_nj - m_n) over the whole
  // vocabulary, loss_n = log s_n + m_n - z_n,target. The caller all-reduces the partial results:
  //   row_max:         mx[n] = max_{j < valid} logits[n, j]   (lowest float when valid == 0)
  //   exp_sum_target:  sum[n] = sum_{j < valid} exp(logits[n, j] - mx[n]);
  //                    tgt[n] = logits[n, target - col0] if the target is in this shard, else 0
  //   backward:        dlogits[n, j] = dloss * (exp(logits[n, j] - mx[n]) / sum[n] - [j + col0 == target])
  //                    for j < valid, 0 for padding columns and rows with target < 0 (may alias)
  virtual void vocab_parallel_row_max(Tensor& mx, const Tensor& logits, int64_t valid) = 0;
  virtual void vocab_parallel_exp_sum_target(Tensor& sum, Tensor& tgt, const Tensor& logits, const Tensor& mx,
                                             const Tensor& targets, int64_t col0, int64_t valid) = 0;
  virtual void vocab_parallel_cross_entropy_backward(Tensor& dlogits, const Tensor& logits, const Tensor& mx,
                                                     const Tensor& sum, const Tensor& targets, int64_t col0,
                                                     int64_t valid, float dloss) = 0;

  // ---- recurrent cells (one time step of B rows; G gates: RNN 1, LSTM 4, GRU 3)
  // After the step's two GEMMs, xg [B, G*H] = x W_ih^T + b_ih and hg [B, G*H] = h_prev W_hh^T
  // (no bias): the fused gate kernel writes h [B, H], for the LSTM the cell state c [B, H]
  // (c_prev [B, H] is read; c and c_prev are ignored by the other cells), and `saved`
  // [B, 4H] what backward needs (LSTM: the activated gates i|f|g|o; GRU: r|z|n and
  // hn = h_prev W_hn^T + b_hn; RNN: nothing, `saved` is ignored).
  virtual void recurrent_step_forward(RecurrentCell cell, Tensor& h, Tensor& c, Tensor& saved,
                                      const Tensor& xg, const Tensor& hg, const Tensor& b_hh,
                                      const Tensor& h_prev, const Tensor& c_prev) = 0;
  // Backward of one step. On entry dh [B, H] is d(loss)/d(h) from the later steps and dy [B, H]
  // the gradient reaching h from above at this step; LSTM: dc [B, H] d(loss)/d(c) from the later
  // steps. Writes dgx [B, G*H] = d(loss)/d(xg) and dgh [B, G*H] = d(loss)/d(hg + b_hh) (for RNN
  // and LSTM the two are equal and dgh may be dgx itself). On exit dh holds the part of
  // d(loss)/d(h_prev) that does not pass through W_hh (GRU: z * dh_total; RNN, LSTM: 0), so the
  // caller adds dgh W_hh; LSTM: dc holds d(loss)/d(c_prev).
  virtual void recurrent_step_backward(RecurrentCell cell, Tensor& dgx, Tensor& dgh, Tensor& dh, Tensor& dc,
                                       const Tensor& dy, const Tensor& saved, const Tensor& h,
                                       const Tensor& h_prev, const Tensor& c, const Tensor& c_prev) = 0;

  // ---- optimizer
  virtual void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                            const AdamWStep& step) = 0;

  // Waits until the work this backend queued is done (a CPU backend's is done on return): timing
  // code calls it before it reads a clock.
  virtual void synchronize() {}

  // Host threads this backend computes with (CPU: the process's OpenMP/OpenBLAS threads, which
  // core/cpu/host_threads.h sets; a device backend: its host-side helpers).
  virtual int num_threads() const = 0;
};

}  // namespace kervan
