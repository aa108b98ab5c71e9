#include "core/model/gpt.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace kervan {

namespace {
constexpr float kInitStd = 0.02f;
}

TpGroup* GPT::checked_tp(const GPTConfig& config, TpGroup* tp) {
  if (!tp || tp->size() == 1) return nullptr;
  const int p = tp->size();
  config.validate();
  auto require = [p](int64_t n, const std::string& what) {
    if (n % p != 0)
      throw UserError("parallel.tp = " + std::to_string(p) + " does not divide " + what + " (" +
                      std::to_string(n) + ")");
  };
  require(config.n_head, "model.n_head");
  require(config.padded_vocab(), "the padded vocabulary");
  require(4 * config.d_model, "the MLP width 4 * model.d_model");
  return tp;
}

GPT::GPT(const GPTConfig& config, Backend& backend, int64_t max_batch, int64_t max_seq, TpGroup* tp)
    : config_(config), be_(backend), tp_(checked_tp(config, tp)), max_batch_(max_batch), max_seq_(max_seq) {
  config_.validate();
  KERVAN_CHECK(max_seq <= config.max_seq_len, "sequence longer than the position table");
  const int64_t C = config_.d_model;
  const float proj_std = kInitStd / std::sqrt(2.0f * config_.n_layer);
  embedding_ = std::make_unique<Embedding>(params_, config_.vocab_size, config_.padded_vocab(),
                                           config_.max_seq_len, C, kInitStd, tp_);
  blocks_.reserve(config_.n_layer);
  for (int l = 0; l < config_.n_layer; ++l) {
    const std::string h = "h." + std::to_string(l);
    const size_t first = params_.all().size();
    blocks_.push_back(Block{
        LayerNorm(params_, h + ".ln_1", C),
        CausalSelfAttention(params_, h + ".attn", C, config_.n_head, kInitStd, proj_std, tp_),
        LayerNorm(params_, h + ".ln_2", C), Mlp(params_, h + ".mlp", C, 4 * C, kInitStd, proj_std, tp_)});
    block_params_.emplace_back(first, params_.all().size());
  }
  ln_f_params_ = params_.all().size();
  ln_f_ = std::make_unique<LayerNorm>(params_, "ln_f", C);
  params_.allocate(be_);

  step_ = layout(config_, tp_size(), max_batch_, max_seq_, [this](Shape s, DType d) {
    buffers_.push_back(be_.empty(s, d));
    return buffers_.back();
  });
}

int64_t GPT::activation_bytes(const GPTConfig& config, int tp, int64_t max_batch, int64_t max_seq) {
  int64_t bytes = 0;
  layout(config, tp, max_batch, max_seq, [&bytes](Shape s, DType d) {
    bytes += shape_numel(s) * static_cast<int64_t>(dtype_size(d));
    return Tensor();
  });
  return bytes;
}

GPT::StepTensors GPT::layout(const GPTConfig& config, int tp, int64_t B, int64_t T,
                             const std::function<Tensor(Shape, DType)>& make) {
  // Local sizes: heads, qkv, MLP width and vocabulary are split across the tensor-parallel group.
  const int64_t p = tp, C = config.d_model, NH = config.n_head / p, Vp = config.padded_vocab() / p;
  const int64_t C3 = 3 * C / p, Cl = C / p, H = 4 * C / p;
  const DType f = DType::F32;
  StepTensors s;
  s.B = B;
  s.T = T;
  s.tokens = make({B, T}, DType::I32);
  s.targets = make({B, T}, DType::I32);
  s.x0 = make({B, T, C}, f);
  s.local_tokens = make({B, T}, DType::I32);
  s.ce_max = make({B * T}, f);
  s.ce_sum_tgt = make({2, B * T}, f);
  for (int l = 0; l < config.n_layer; ++l) {
    BlockSaved b;
    b.ln1 = make({B, T, C}, f);
    b.ln1_mean = make({B * T}, f);
    b.ln1_rstd = make({B * T}, f);
    b.attn.qkv = make({B, T, C3}, f);
    b.attn.probs = make({B, NH, T, T}, f);
    b.attn.att = make({B, T, Cl}, f);
    b.res1 = make({B, T, C}, f);
    b.ln2 = make({B, T, C}, f);
    b.ln2_mean = make({B * T}, f);
    b.ln2_rstd = make({B * T}, f);
    b.mlp.fc = make({B, T, H}, f);
    b.mlp.fc_gelu = make({B, T, H}, f);
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
  s.dhidden = make({B, T, H}, f);
  s.attn_scratch.datt = make({B, T, Cl}, f);
  s.attn_scratch.dqkv = make({B, T, C3}, f);
  s.attn_scratch.dprobs = make({B, NH, T, T}, f);
  return s;
}

void GPT::resize_step(int64_t B, int64_t T) {
  if (B == step_.B && T == step_.T) return;
  KERVAN_CHECK(B <= max_batch_ && T <= max_seq_, "batch larger than the model was built for");
  size_t i = 0;
  step_ = layout(config_, tp_size(), B, T, [this, &i](Shape s, DType d) {
    KERVAN_CHECK(i < buffers_.size() && buffers_[i].dtype() == d,
                 "step layout differs from the allocated one");
    return buffers_[i++].slice_flat(0, std::move(s));
  });
  KERVAN_CHECK(i == buffers_.size(), "step layout rebuilt " + std::to_string(i) + " of " +
                                         std::to_string(buffers_.size()) + " buffers");
}

void GPT::grads_ready(size_t first, size_t last) {
  if (!grad_ready_) return;
  for (size_t i = first; i < last; ++i) grad_ready_(params_.all()[i]);
}

void GPT::init_weights(uint64_t seed) {
  params_.initialize(be_, seed);
}

void GPT::state(StateDict& out) {
  params_.append_state(out, "model/", params_.values(), 0);
}

void GPT::load_state(const StateDict& in) {
  StateDict own;
  state(own);
  copy_state_tensors(be_, own, in);
}

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

float GPT::forward(const Batch& batch) {
  const int64_t B = batch.B, T = batch.T;
  const int32_t *tokens = batch.tokens, *targets = batch.targets;
  resize_step(B, T);
  StepTensors& st = step_;
  be_.copy_from_host(st.tokens, tokens);
  if (tp_) {  // ids in this rank's vocabulary shard, shifted to local rows; -1 elsewhere
    const int64_t begin = embedding_->vocab_begin(), rows = embedding_->wte().shape[0];
    std::vector<int32_t> local(tokens, tokens + B * T);
    for (int32_t& id : local) id = id >= begin && id < begin + rows ? static_cast<int32_t>(id - begin) : -1;
    be_.copy_from_host(st.local_tokens, local.data());
  }
  const Tensor& lookup = tp_ ? st.local_tokens : st.tokens;
  embedding_->forward(be_, st.x0, lookup);
  const Tensor* x = &st.x0;
  for (int l = 0; l < config_.n_layer; ++l) {
    block_forward(blocks_[l], st.blocks[l], *x);
    x = &st.blocks[l].res2;
  }
  ln_f_->forward(be_, st.lnf, st.lnf_mean, st.lnf_rstd, *x);
  // LM head tied to the token embedding: logits [BT, Vp] = lnf [BT, C] wte^T (this rank's
  // vocabulary columns under tensor parallelism)
  Tensor logits2 = st.logits.view({B * T, embedding_->wte().shape[0]});
  be_.matmul(logits2, st.lnf.view({B * T, config_.d_model}), false, embedding_->wte().value, true, 1.0f,
             0.0f);
  if (!targets) {
    valid_targets_ = 0;
    return 0.0f;
  }
  be_.copy_from_host(st.targets, targets);
  if (tp_) return vocab_parallel_loss(targets, B * T);
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

// Mean over the valid targets of loss_n = log s_n + m_n - z_n,target, from this rank's logit
// columns: m_n = max over the group of the local row maxima; then the local sums of exp(z - m_n)
// and the target logit (non-zero on the owning rank only) summed over the group in one all-reduce.
float GPT::vocab_parallel_loss(const int32_t* targets, int64_t BT) {
  StepTensors& st = step_;
  const Tensor logits2 = st.logits.view({BT, embedding_->wte().shape[0]});
  const int64_t begin = embedding_->vocab_begin();
  const int64_t valid = std::clamp<int64_t>(config_.vocab_size - begin, 0, logits2.dim(1));
  be_.vocab_parallel_row_max(st.ce_max, logits2, valid);
  tp_->all_reduce_max(st.ce_max);
  Tensor sum = st.ce_sum_tgt.slice_flat(0, {BT}), tgt = st.ce_sum_tgt.slice_flat(BT, {BT});
  be_.vocab_parallel_exp_sum_target(sum, tgt, logits2, st.ce_max, st.targets, begin, valid);
  tp_->all_reduce_sum(st.ce_sum_tgt);
  std::vector<float> mx(BT), stats(2 * BT);
  be_.copy_to_host(mx.data(), st.ce_max);
  be_.copy_to_host(stats.data(), st.ce_sum_tgt);
  double total = 0.0;
  valid_targets_ = 0;
  for (int64_t n = 0; n < BT; ++n) {
    if (targets[n] < 0) continue;
    total += std::log(static_cast<double>(stats[n])) + mx[n] - stats[BT + n];
    ++valid_targets_;
  }
  return valid_targets_ ? static_cast<float>(total / valid_targets_) : 0.0f;
}

void GPT::logits_row(int64_t n, float* out) {
  const int64_t cols = embedding_->wte().shape[0];
  KERVAN_CHECK(n >= 0 && n < step_.B * step_.T, "logits row out of range");
  const Tensor row = step_.logits.view({step_.B * step_.T, cols}).rows(n, n + 1).view({cols});
  if (!tp_) {
    be_.copy_to_host(out, row);
    return;
  }
  Tensor all = be_.empty({cols * tp_->size()}, DType::F32);
  tp_->all_gather(all, row);  // shard k holds vocabulary columns [k*cols, (k+1)*cols)
  be_.copy_to_host(out, all);
}

void GPT::next_token_logits(const int32_t* context, int64_t T, float* out) {
  forward(Batch{1, T, context, nullptr});
  logits_row(T - 1, out);
}

void GPT::backward(float loss_scale) {
  KERVAN_CHECK(valid_targets_ > 0, "backward without a forward with targets");
  StepTensors& st = step_;
  const int64_t BT = st.B * st.T, C = config_.d_model;
  Parameter& wte = embedding_->wte();
  Tensor dlogits = st.logits.view({BT, wte.shape[0]});
  const float dloss = loss_scale / static_cast<float>(valid_targets_);
  if (tp_) {
    const int64_t begin = embedding_->vocab_begin();
    const int64_t valid = std::clamp<int64_t>(config_.vocab_size - begin, 0, dlogits.dim(1));
    be_.vocab_parallel_cross_entropy_backward(dlogits, dlogits, st.ce_max, st.ce_sum_tgt.slice_flat(0, {BT}),
                                              st.targets, begin, valid, dloss);
  } else {
    be_.cross_entropy_backward(dlogits, dlogits, st.targets, config_.vocab_size, dloss);
  }
  // LM head: d(lnf) = dlogits wte;  d(wte) += dlogits^T lnf. Under tensor parallelism each rank
  // has the part of d(lnf) from its vocabulary columns (summed over the group) and its shard of d(wte).
  Tensor dln = st.dln.view({BT, C});
  be_.matmul(dln, dlogits, false, wte.value, false, 1.0f, 0.0f);
  if (tp_) tp_->all_reduce_sum(dln);
  be_.matmul(wte.grad, dlogits, true, st.lnf.view({BT, C}), false, 1.0f, 1.0f);
  const bool sparse_rows = sparse_rows_ && !tp_;
  if (sparse_rows && grad_ready_) grad_ready_(wte);
  const Tensor& last = config_.n_layer ? st.blocks.back().res2 : st.x0;
  ln_f_->backward(be_, st.dres, st.dln, last, st.lnf_mean, st.lnf_rstd);
  grads_ready(ln_f_params_, params_.all().size());
  for (int l = config_.n_layer - 1; l >= 0; --l) {
    block_backward(blocks_[l], st.blocks[l], l == 0 ? st.x0 : st.blocks[l - 1].res2);
    grads_ready(block_params_[l].first, block_params_[l].second);
  }
  const size_t embedding_end = block_params_.empty() ? ln_f_params_ : block_params_.front().first;
  if (sparse_rows) {
    embedding_->backward_positions(be_, st.dres);
    const Tensor rows = st.dres.view({BT, C}), ids = st.tokens.view({BT});
    if (!sparse_rows_(rows, ids)) be_.scatter_add_rows(wte.grad, rows, ids, 1.0f);
    grads_ready(1, embedding_end);  // wpe (index 1; wte, index 0, was reported after the LM head)
  } else {
    embedding_->backward(be_, st.dres, tp_ ? st.local_tokens : st.tokens);
    grads_ready(0, embedding_end);  // wte (also the LM head), wpe
  }
}

}  // namespace kervan
