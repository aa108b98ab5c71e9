// The recurrent study's gradient norms per position (Model::record_position_grad_norms), checked
// against gradients the models already compute (and that test_gpt_parity / test_recurrent hold to
// PyTorch), with a loss at the last position only:
//  - GPT with one block: the residual stream entering the last block is the embedding sum
//    wte[token] + wpe[t], so with one sequence d(loss)/d(x_t) is d(loss)/d(wpe[t]) row by row;
//  - an RNN layer whose W_ih equals its W_hh (untied head, no residual): d(loss)/d(h_{t-1}) =
//    W_hh^T d(pre_t) = W_ih^T d(pre_t) = d(loss)/d(x_t), the gradient of token t's embedding row
//    (every token distinct, so each row is one position's).
// Tolerance 1e-5 relative: the same float gradients, the norms summed in another order.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "core/cpu/cpu_backend.h"
#include "core/model/gpt.h"
#include "core/model/recurrent.h"
#include "fd_check.h"

namespace kervan::test {
namespace {

double row_norm(const Parameter& p, int64_t row) {
  const int64_t C = p.grad.dim(1);
  const float* g = p.grad.data<float>() + row * C;
  double s = 0;
  for (int64_t c = 0; c < C; ++c) s += static_cast<double>(g[c]) * g[c];
  return std::sqrt(s);
}

// Distinct tokens 1..T; only the last position predicts.
struct LastPositionBatch {
  explicit LastPositionBatch(int64_t T) : tokens(T), targets(T, -1) {
    std::iota(tokens.begin(), tokens.end(), 1);
    targets.back() = 0;
  }
  std::vector<int32_t> tokens, targets;
};

TEST(PositionGradNorms, GptResidualStreamIsThePositionEmbeddingGradient) {
  auto be = make_cpu_backend();
  const int64_t T = 8;
  GPT model(GPTConfig{1, 2, 16, 40, T}, *be, 1, T);
  model.init_weights(5);
  for (Parameter& p : model.params().all())  // larger than the init, so far positions matter
    if (p.name == "wpe" || p.name == "wte") fill_normal(p.value, 7 + p.offset, 0.5f);
  model.record_position_grad_norms(true);
  LastPositionBatch batch(T);
  model.forward(batch.tokens.data(), batch.targets.data(), 1, T);
  model.backward(1.0f);
  const std::vector<double> norms = model.position_grad_norms();
  ASSERT_EQ(static_cast<int64_t>(norms.size()), T);
  const Parameter* wpe = model.params().find("wpe");
  ASSERT_NE(wpe, nullptr);
  for (int64_t k = 0; k < T; ++k) {
    const double want = row_norm(*wpe, T - 1 - k);
    EXPECT_GT(want, 0.0) << k;
    EXPECT_NEAR(norms[k], want, 1e-5 * want) << "distance " << k;
  }
}

TEST(PositionGradNorms, RecurrentTopLayerHiddenState) {
  auto be = make_cpu_backend();
  const int64_t T = 6, C = 8;
  RecurrentLM model(RecurrentConfig{RecurrentCell::Rnn, 1, C, 40, /*tied=*/false, /*residual=*/false, false},
                    *be, 1, T);
  model.init_weights(3);
  Parameter* w_ih = model.params().find("rnn.0.weight_ih");
  Parameter* w_hh = model.params().find("rnn.0.weight_hh");
  ASSERT_TRUE(w_ih && w_hh);
  fill_normal(w_hh->value, 11, 0.4f);
  std::copy_n(w_hh->value.data<float>(), w_hh->value.numel(), w_ih->value.data<float>());
  model.record_position_grad_norms(true);
  LastPositionBatch batch(T);
  model.forward(batch.tokens.data(), batch.targets.data(), 1, T);
  model.backward(1.0f);
  const std::vector<double> norms = model.position_grad_norms();
  ASSERT_EQ(static_cast<int64_t>(norms.size()), T);
  const Parameter* wte = model.params().find("wte");
  EXPECT_GT(norms[0], 0.0);
  for (int64_t k = 1; k < T; ++k) {  // h at position T-1-k feeds step T-k, whose input is token T-k
    const double want = row_norm(*wte, batch.tokens[T - k]);
    EXPECT_GT(want, 0.0) << k;
    EXPECT_NEAR(norms[k], want, 1e-5 * want) << "distance " << k;
  }
  // Off: nothing recorded, and what was recorded stays until the next recording backward.
  model.record_position_grad_norms(false);
  model.backward(1.0f);
  EXPECT_EQ(model.position_grad_norms(), norms);
}

}  // namespace
}  // namespace kervan::test
