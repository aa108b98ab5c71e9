// `kervan bench attention`: the attention core (Backend::attention_forward / attention_backward)
// alone, at one shape, on a fused q|k|v [B, T, 3C] as the layers pass it: the time of a forward
// and of a backward, and the FLOPs and bytes that time is measured against (METHOD.md's two
// numbers: divide by the card's measured matrix rate and copy bandwidth for the floor).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "core/backends/backends.h"
#include "core/cpu/host_threads.h"
#include "core/error.h"
#include "launcher/bench.h"

namespace kervan {

namespace {

// Seconds per call: `reps` calls between two synchronisations (so that launch gaps overlap as in
// training), the median of 5 such batches, after one untimed call.
double seconds_per_call(Backend& be, int reps, const std::function<void()>& call) {
  call();
  be.synchronize();
  std::vector<double> t;
  for (int batch = 0; batch < 5; ++batch) {
    const auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) call();
    be.synchronize();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / reps);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int run_bench_attention(const BenchAttentionOptions& o) {
  set_host_threads(static_cast<int>(o.threads));
  auto be = make_backend(o.device);
  be->set_precision(precision_named(o.precision));
  const int64_t B = o.batch, T = o.seq, NH = o.heads, hs = o.head_size, C = NH * hs;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](const Shape& shape) {  // never zeros (METHOD.md)
    std::vector<float> v(shape_numel(shape));
    for (float& x : v) x = normal(rng);
    Tensor t = be->empty(shape, DType::F32);
    be->copy_from_host(t, v.data());
    return t;
  };
  Tensor qkv = random({B, T, 3 * C}), dout = random({B, T, C});
  Tensor out = be->empty({B, T, C}, DType::F32), dqkv = be->empty({B, T, 3 * C}, DType::F32);
  Tensor saved = be->empty(be->attention_saved_shape(B, NH, T, T), DType::F32);
  Tensor scratch = be->empty(be->attention_scratch_shape(B, NH, T, T, false), DType::F32);
  const AttentionSpec spec{static_cast<int>(NH), 1.0f / std::sqrt(static_cast<float>(hs)), o.causal};
  auto blk = [&](const Tensor& t, int i) { return ColumnBlock::of(t, i * C, C); };
  const double fwd = seconds_per_call(
      *be, o.reps, [&] { be->attention_forward(out, saved, blk(qkv, 0), blk(qkv, 1), blk(qkv, 2), spec); });
  const double bwd = seconds_per_call(*be, o.reps, [&] {
    be->attention_backward(blk(dqkv, 0), blk(dqkv, 1), blk(dqkv, 2), scratch, dout, out, blk(qkv, 0),
                           blk(qkv, 1), blk(qkv, 2), saved, spec);
  });
  // One T x T x hs product over all heads, halved under the causal mask; forward has 2 (Q K^T,
  // P V), backward 5 (Q K^T and dO V^T recomputed, dV, dK, dQ), FlashAttention's convention (the
  // CUDA kernel's deterministic backward does 7). Bytes: fp32 inputs read and outputs written once.
  const double product = 2.0 * B * NH * T * T * hs * (o.causal ? 0.5 : 1.0);
  const double act = 4.0 * B * T * C, stats = 4.0 * B * NH * T;
  const double fwd_bytes = 3 * act + act + stats, bwd_bytes = 3 * act + 2 * act + stats + 3 * act;
  const nlohmann::json j = {{"bench", "attention"},
                            {"device", o.device},
                            {"precision", o.precision},
                            {"batch", B},
                            {"heads", NH},
                            {"seq", T},
                            {"head_size", hs},
                            {"causal", o.causal},
                            {"forward_ms", fwd * 1e3},
                            {"backward_ms", bwd * 1e3},
                            {"forward_gflop", 2 * product / 1e9},
                            {"backward_gflop", 5 * product / 1e9},
                            {"forward_mb", fwd_bytes / 1e6},
                            {"backward_mb", bwd_bytes / 1e6},
                            {"forward_tflops", 2 * product / fwd / 1e12},
                            {"backward_tflops", 5 * product / bwd / 1e12},
                            {"forward_gbs", fwd_bytes / fwd / 1e9},
                            {"backward_gbs", bwd_bytes / bwd / 1e9}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace kervan
