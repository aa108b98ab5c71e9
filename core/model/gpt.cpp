#include "core/model/gpt.h"

#include <cmath>

#include "core/error.h"

namespace kervan {

namespace {
constexpr float kInitStd = 0.02f;
}

GPT::GPT(const GPTConfig& config, Backend& backend, int64_t max_batch, int64_t max_seq)
    : config_(config), be_(backend), max_batch_(max_batch), max_seq_(max_seq) {
  config_.validate();
  KERVAN_CHECK(max_seq <= config.max_seq_len, "sequence longer than the position table");
  const int64_t C = config_.d_model;
  const float proj_std = kInitStd / std::sqrt(2.0f * config_.n_layer);
  embedding_ = std::make_unique<Embedding>(params_, config_.vocab_size, config_.padded_vocab(),
                                           config_.max_seq_len, C, kInitStd);
  blocks_.reserve(config_.n_layer);
  for (int l = 0; l < config_.n_layer; ++l) {
    const std::string h = "h." + std::to_string(l);
    const size_t first = params_.all().size();
    blocks_.push_back(Block{LayerNorm(params_, h + ".ln_1", C),
                            CausalSelfAttention(params_, h + ".attn", C, config_.n_head, kInitStd, proj_std),
                            LayerNorm(params_, h + ".ln_2", C),
                            Mlp(params_, h + ".mlp", C, 4 * C, kInitStd, proj_std)});
    block_params_.emplace_back(first, params_.all().size());
  }
  ln_f_params_ = params_.all().size();
  ln_f_ = std::make_unique<LayerNorm>(params_, "ln_f", C);
  params_.allocate(be_);

  step_ = layout(max_batch_, max_seq_, [this](Shape s, DType d) {
    buffers_.push_back(be_.empty(s, d));
    return buffers_.back();
  });
}

GPT::StepTensors GPT::layout(int64_t B, int64_t T, const std::function<Tensor(Shape, DType)>& make) const {
  const int64_t C = config_.d_model, NH = config_.n_head, Vp = config_.padded_vocab();
  const DType f = DType::F32;
  StepTensors s;
  s.B = B;
  s.T = T;
  s.tokens = make({B, T}, DType::I32);
  s.targets = make({B, T}, DType::I32);
  s.x0 = make({B, T, C}, f);
  for (int l = 0; l < config_.n_layer; ++l) {
    BlockSaved b;
    b.ln1 = make({B, T, C}, f);
    b.ln1_mean = make({B * T}, f);
    b.ln1_rstd = make({B * T}, f);
    b.attn.qkv = make({B, T, 3 * C}, f);
    b.attn.probs = make({B, NH, T, T}, f);
    b.attn.att = make({B, T, C}, f);
    b.res1 = make({B, T, C}, f);
    b.ln2 = make({B, T, C}, f);
    b.ln2_mean = make({B * T}, f);
    b.ln2_rstd = make({B * T}, f);
    b.mlp.fc = make({B, T, 4 * C}, f);
    b.mlp.fc_gelu = make({B, T, 4 * C}, f);
    b.res2 = make({B, T, C}, f);
    s.blocks.push_back(std::move(b));
  }
  s.lnf = make({B, T, C}, f);
  s.lnf_mean = make({B * T}, f);
  s.lnf_rstd = make({B * T}, f);
  s.logits = make({B, T, Vp}, f);
  s.losses = make({B * T}, f);
  s.y = make({B, T, C}, f);
  s.dres = make({B, T, C}, f);
  s.dln = make({B, T, C}, f);
  s.dtmp = make({B, T, C}, f);
  s.dhidden = make({B, T, 4 * C}, f);
  s.attn_scratch.datt = make({B, T, C}, f);
  s.attn_scratch.dqkv = make({B, T, 3 * C}, f);
  s.attn_scratch.dprobs = make({B, NH, T, T}, f);
  return s;
}

void GPT::resize_step(int64_t B, int64_t T) {
  if (B == step_.B && T == step_.T) return;
  KERVAN_CHECK(B <= max_batch_ && T <= max_seq_, "batch larger than the model was built for");
  size_t i = 0;
  step_ = layout(B, T, [this, &i](Shape s, DType) { return buffers_[i++].slice_flat(0, std::move(s)); });
}

void GPT::grads_ready(size_t first, size_t last) {
  if (!grad_ready_) return;
  for (size_t i = first; i < last; ++i) grad_ready_(params_.all()[i]);
}

void GPT::init_weights(uint64_t seed) { params_.initialize(be_, seed); }

void GPT::block_forward(const Block& blk, BlockSaved& s, const Tensor& x) {
  blk.ln_1.forward(be_, s.ln1, s.ln1_mean, s.ln1_rstd, x);
  blk.attn.forward(be_, step_.y, s.attn, s.ln1);
  be_.add(s.res1, x, step_.y);
  blk.ln_2.forward(be_, s.ln2, s.ln2_mean, s.ln2_rstd, s.res1);
  blk.mlp.forward(be_, step_.y, s.mlp, s.ln2);
  be_.add(s.res2, s.res1, step_.y);
}

// On entry step_.dres holds d(block output); on exit d(block input x).
void GPT::block_backward(const Block& blk, const BlockSaved& s, const Tensor& x) {
  StepTensors& st = step_;
  blk.mlp.backward(be_, st.dln, st.dres, s.ln2, s.mlp, st.dhidden);
  blk.ln_2.backward(be_, st.dtmp, st.dln, s.res1, s.ln2_mean, s.ln2_rstd);
  be_.add(st.dres, st.dres, st.dtmp);  // residual: d(res1) = d(res2) + through ln_2
  blk.attn.backward(be_, st.dln, st.dres, s.ln1, s.attn, st.attn_scratch);
  blk.ln_1.backward(be_, st.dtmp, st.dln, x, s.ln1_mean, s.ln1_rstd);
  be_.add(st.dres, st.dres, st.dtmp);  // residual: d(x) = d(res1) + through ln_1
}

float GPT::forward(const int32_t* tokens, const int32_t* targets, int64_t B, int64_t T) {
  resize_step(B, T);
  StepTensors& st = step_;
  be_.copy_from_host(st.tokens, tokens);
  embedding_->forward(be_, st.x0, st.tokens);
  const Tensor* x = &st.x0;
  for (int l = 0; l < config_.n_layer; ++l) {
    block_forward(blocks_[l], st.blocks[l], *x);
    x = &st.blocks[l].res2;
  }
  ln_f_->forward(be_, st.lnf, st.lnf_mean, st.lnf_rstd, *x);
  // LM head tied to the token embedding: logits [BT, Vp] = lnf [BT, C] wte^T
  Tensor logits2 = st.logits.view({B * T, config_.padded_vocab()});
  be_.matmul(logits2, st.lnf.view({B * T, config_.d_model}), false, embedding_->wte().value, true, 1.0f, 0.0f);
  if (!targets) {
    valid_targets_ = 0;
    return 0.0f;
  }
  be_.copy_from_host(st.targets, targets);
  be_.cross_entropy_forward(st.losses, logits2, st.targets, config_.vocab_size);
  std::vector<float> losses(B * T);
  be_.copy_to_host(losses.data(), st.losses);
  double sum = 0.0;
  valid_targets_ = 0;
  for (int64_t i = 0; i < B * T; ++i) {
    sum += losses[i];
    valid_targets_ += targets[i] >= 0;
  }
  return valid_targets_ ? static_cast<float>(sum / valid_targets_) : 0.0f;
}

void GPT::backward(float loss_scale) {
  KERVAN_CHECK(valid_targets_ > 0, "backward without a forward with targets");
  StepTensors& st = step_;
  const int64_t BT = st.B * st.T, C = config_.d_model;
  Tensor dlogits = st.logits.view({BT, config_.padded_vocab()});
  be_.cross_entropy_backward(dlogits, dlogits, st.targets, config_.vocab_size,
                             loss_scale / static_cast<float>(valid_targets_));
  // LM head: d(lnf) = dlogits wte;  d(wte) += dlogits^T lnf
  Parameter& wte = embedding_->wte();
  Tensor dln = st.dln.view({BT, C});
  be_.matmul(dln, dlogits, false, wte.value, false, 1.0f, 0.0f);
  be_.matmul(wte.grad, dlogits, true, st.lnf.view({BT, C}), false, 1.0f, 1.0f);
  if (token_grad_ && grad_ready_) grad_ready_(wte);
  const Tensor& last = config_.n_layer ? st.blocks.back().res2 : st.x0;
  ln_f_->backward(be_, st.dres, st.dln, last, st.lnf_mean, st.lnf_rstd);
  grads_ready(ln_f_params_, params_.all().size());
  for (int l = config_.n_layer - 1; l >= 0; --l) {
    block_backward(blocks_[l], st.blocks[l], l == 0 ? st.x0 : st.blocks[l - 1].res2);
    grads_ready(block_params_[l].first, block_params_[l].second);
  }
  const size_t embedding_end = block_params_.empty() ? ln_f_params_ : block_params_.front().first;
  if (token_grad_) {
    embedding_->backward_positions(be_, st.dres);
    if (!token_grad_(st.dres, st.tokens)) be_.scatter_add_rows(wte.grad, st.dres, st.tokens, 1.0f);
    grads_ready(1, embedding_end);  // wpe (index 1; wte, index 0, was reported after the LM head)
  } else {
    embedding_->backward(be_, st.dres, st.tokens);
    grads_ready(0, embedding_end);  // wte (also the LM head), wpe
  }
}

}  // namespace kervan
