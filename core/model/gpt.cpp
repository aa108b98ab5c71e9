#include "core/model/gpt.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/model/tp_check.h"

namespace kervan {

namespace {
constexpr float kInitStd = 0.02f;
}

TpGroup* GPT::checked_tp(const GPTConfig& config, TpGroup* tp) {
  if (tp && tp->size() > 1) config.validate();
  return kervan::checked_tp(tp, {{config.n_head, "model.n_head"},
                                 {config.padded_vocab(), "the padded vocabulary"},
                                 {4 * config.d_model, "the MLP width 4 * model.d_model"}});
}

GPT::GPT(const GPTConfig& config, Backend& backend, int64_t max_batch, int64_t max_seq, TpGroup* tp,
         int64_t num_classes)
    : config_(config),
      be_(backend),
      tp_(checked_tp(config, tp)),
      max_batch_(max_batch),
      max_seq_(max_seq),
      arena_(backend) {
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
        SelfAttention(params_, h + ".attn", C,
                      {.n_head = config_.n_head, .causal = true, .proj_std = proj_std}, tp_),
        LayerNorm(params_, h + ".ln_2", C), Mlp(params_, h + ".mlp", C, 4 * C, kInitStd, proj_std, {}, tp_)});
    block_params_.emplace_back(first, params_.all().size());
  }
  ln_f_params_ = params_.all().size();
  ln_f_ = std::make_unique<LayerNorm>(params_, "ln_f", C);
  lm_head_ = std::make_unique<LmHead>(embedding_->wte(), nullptr, config_.vocab_size,
                                      embedding_->vocab_begin(), 1.0f, tp_);
  classifier_params_ = params_.all().size();
  if (num_classes > 0)
    classifier_ =
        std::make_unique<ClassificationHead>(params_, "cls", C, num_classes, /*pooler=*/false, kInitStd);
  params_.allocate(be_);
  layout(max_batch_, max_seq_);
}

int64_t GPT::activation_bytes(const GPTConfig& config, int tp, int64_t B, int64_t T, Device device) {
  // Counts layout()'s tensors: keep the two in step.
  const int64_t C = config.d_model, NH = config.n_head / tp, Vp = config.padded_vocab() / tp;
  const int64_t C3 = 3 * C / tp, Cl = C / tp, H = 4 * C / tp, BT = B * T;
  const int64_t saved = shape_numel(attention_saved_shape(device, B, NH, T, T));
  const int64_t scratch = shape_numel(attention_scratch_shape(device, B, NH, T, T, false));
  const int64_t ints = 3 * BT;  // tokens, targets, local_tokens
  const int64_t per_block = 4 * BT * C + 4 * BT + BT * C3 + saved + BT * Cl + 2 * BT * H;
  const int64_t floats = BT * C + config.n_layer * per_block + BT * C + 2 * BT  // x0, blocks, lnf
                         + BT * Vp + 4 * BT                                     // the LM head
                         + 4 * BT * C + BT * H + BT * Cl + BT * C3 + scratch;   // y, scratch
  return (ints + floats) * 4;
}

void GPT::layout(int64_t B, int64_t T) {
  if (B == step_.B && T == step_.T) return;
  KERVAN_CHECK(B <= max_batch_ && T <= max_seq_, "batch larger than the model was built for");
  // Local sizes: heads, qkv, MLP width and vocabulary are split across the tensor-parallel group.
  const int64_t p = tp_size(), C = config_.d_model, NH = config_.n_head / p, Vp = config_.padded_vocab() / p;
  const int64_t C3 = 3 * C / p, Cl = C / p, H = 4 * C / p;
  ActivationArena& a = arena_;
  a.begin();
  StepTensors s;
  s.B = B;
  s.T = T;
  s.tokens = a.make({B, T}, DType::I32);
  s.targets = a.make({B, T}, DType::I32);
  s.x0 = a.make({B, T, C});
  s.local_tokens = a.make({B, T}, DType::I32);
  for (int l = 0; l < config_.n_layer; ++l) {
    BlockSaved b;
    b.ln1 = a.make({B, T, C});
    b.ln1_mean = a.make({B * T});
    b.ln1_rstd = a.make({B * T});
    b.attn.qkv = a.make({B, T, C3});
    b.attn.probs = a.make(be_.attention_saved_shape(B, NH, T, T));
    b.attn.att = a.make({B, T, Cl});
    b.res1 = a.make({B, T, C});
    b.ln2 = a.make({B, T, C});
    b.ln2_mean = a.make({B * T});
    b.ln2_rstd = a.make({B * T});
    b.mlp.fc = a.make({B, T, H});
    b.mlp.act = a.make({B, T, H});
    b.res2 = a.make({B, T, C});
    s.blocks.push_back(std::move(b));
  }
  s.lnf = a.make({B, T, C});
  s.lnf_mean = a.make({B * T});
  s.lnf_rstd = a.make({B * T});
  s.lm.logits = a.make({B * T, classifier_ ? 1 : Vp});  // a classifier computes no token logits
  s.lm.losses = a.make({B * T});
  s.lm.ce_max = a.make({B * T});
  s.lm.ce_sum_tgt = a.make({2, B * T});
  s.y = a.make({B, T, C});
  s.dres = a.make({B, T, C});
  s.dln = a.make({B, T, C});
  s.dtmp = a.make({B, T, C});
  s.mlp_scratch.dhidden = a.make({B, T, H});
  s.attn_scratch.datt = a.make({B, T, Cl});
  s.attn_scratch.dqkv = a.make({B, T, C3});
  s.attn_scratch.dprobs = a.make(be_.attention_scratch_shape(B, NH, T, T, false));
  a.end();
  step_ = std::move(s);
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

void GPT::block_forward(const Block& blk, BlockSaved& s, const Tensor& x, int l, int64_t cache_pos) {
  blk.ln_1.forward(be_, s.ln1, s.ln1_mean, s.ln1_rstd, x);
  if (cache_pos < 0) {
    blk.attn.forward(be_, step_.y, s.attn, s.ln1);
  } else {  // a prefill's probabilities fit the step's [1, NH, T, T]; a one-token step uses the cache's
    AttentionSaved a = s.attn;
    if (cache_pos > 0) a.probs = cache_.probs;
    blk.attn.forward_cached(be_, step_.y, cache_.kv[l], cache_pos, s.ln1, a);
  }
  be_.add(s.res1, x, step_.y);
  blk.ln_2.forward(be_, s.ln2, s.ln2_mean, s.ln2_rstd, s.res1);
  blk.mlp.forward(be_, step_.y, s.mlp, s.ln2);
  be_.add(s.res2, s.res1, step_.y);
}

// On entry step_.dres holds d(block output); on exit d(block input x).
void GPT::block_backward(const Block& blk, const BlockSaved& s, const Tensor& x) {
  StepTensors& st = step_;
  blk.mlp.backward(be_, st.dln, st.dres, s.ln2, s.mlp, st.mlp_scratch);
  blk.ln_2.backward(be_, st.dtmp, st.dln, s.res1, s.ln2_mean, s.ln2_rstd);
  be_.add(st.dres, st.dres, st.dtmp);  // residual: d(res1) = d(res2) + through ln_2
  blk.attn.backward(be_, st.dln, st.dres, s.ln1, s.attn, st.attn_scratch);
  blk.ln_1.backward(be_, st.dtmp, st.dln, x, s.ln1_mean, s.ln1_rstd);
  be_.add(st.dres, st.dres, st.dtmp);  // residual: d(x) = d(res1) + through ln_1
}

void GPT::trunk_forward(const int32_t* tokens, int64_t B, int64_t T, bool cached) {
  layout(B, T);
  StepTensors& st = step_;
  be_.copy_from_host(st.tokens, tokens);
  if (tp_) be_.copy_from_host(st.local_tokens, embedding_->local_ids(tokens, B * T).data());
  const Tensor& lookup = tp_ ? st.local_tokens : st.tokens;
  const int64_t pos = cached ? cache_.length : 0;
  embedding_->forward(be_, st.x0, lookup, nullptr, pos);
  const Tensor* x = &st.x0;
  for (int l = 0; l < config_.n_layer; ++l) {
    block_forward(blocks_[l], st.blocks[l], *x, l, cached ? pos : -1);
    x = &st.blocks[l].res2;
  }
  ln_f_->forward(be_, st.lnf, st.lnf_mean, st.lnf_rstd, *x);
}

float GPT::forward(const Batch& batch) {
  const int64_t B = batch.B, T = batch.T;
  const int32_t* targets = batch.targets;
  trunk_forward(batch.tokens, B, T, false);
  StepTensors& st = step_;
  // LM head tied to the token embedding: logits [BT, Vp] = lnf [BT, C] wte^T (this rank's
  // vocabulary columns under tensor parallelism)
  const Tensor lnf = st.lnf.view({B * T, config_.d_model});
  if (!targets) {
    KERVAN_CHECK(!classifier_, "a classifier needs the labelled positions");
    if (last_logits_only_) {  // generation: only the last position's row is read
      Tensor row = st.lm.logits.rows(0, 1);
      lm_head_->logits(be_, row, lnf.rows(B * T - 1, B * T));
    } else {
      lm_head_->logits(be_, st.lm.logits, lnf);
    }
    valid_targets_ = 0;
    return 0.0f;
  }
  LossSum loss;
  if (classifier_) {
    loss = classify_forward(targets, B * T);
  } else {
    be_.copy_from_host(st.targets, targets);
    loss = lm_head_->forward(be_, st.lm, lnf, st.targets.view({B * T}), targets);
  }
  valid_targets_ = loss.count;
  return valid_targets_ ? static_cast<float>(loss.sum / valid_targets_) : 0.0f;
}

// The classification head on the rows of ln_f's output that carry a label.
LossSum GPT::classify_forward(const int32_t* targets, int64_t BT) {
  ClassifyTensors& c = cls_;
  c.rows = labelled_rows(targets, BT);
  const int64_t M = c.rows.size(), C = config_.d_model, K = classifier_->num_classes();
  for (const int32_t label : c.rows.targets)
    KERVAN_CHECK(label < K,
                 "label " + std::to_string(label) + " outside the " + std::to_string(K) + " classes");
  auto f = [&](Shape s) { return be_.empty(s, DType::F32); };
  c.ids = be_.empty({M}, DType::I32);
  c.labels = be_.empty({M}, DType::I32);
  be_.copy_from_host(c.ids, c.rows.rows.data());
  be_.copy_from_host(c.labels, c.rows.targets.data());
  c.h = f({M, C});
  c.dh = f({M, C});
  c.head = {f({M, C}), f({M, C}), f({M, K}), f({M}), f({M, C})};
  be_.gather_rows(c.h, step_.lnf.view({BT, C}), c.ids, false);
  return classifier_->forward(be_, c.head, c.h, c.labels, c.rows.targets.data());
}

std::vector<float> GPT::class_logits() {
  return classifier_ ? be_.to_host<float>(cls_.head.logits) : std::vector<float>{};
}

void GPT::logits_row(int64_t n, float* out) {
  KERVAN_CHECK(!classifier_, "a classifier has no token logits");
  lm_head_->full_row(be_, step_.lm.logits, n, out);
}

void GPT::next_token_logits(const int32_t* context, int64_t T, float* out) {
  // The LM head runs on the last position only (row 0 of the logits): with a large vocabulary it
  // is most of a small model's work.
  last_logits_only_ = true;
  forward(Batch{1, T, context, nullptr});
  last_logits_only_ = false;
  logits_row(0, out);
}

// dx [B, T, C]: norms_[k] = the L2 norm of its rows (b, T-1-k) over b. On the host: the study
// records once per measurement, not per training step.
void GPT::record_norms(const Tensor& dx) {
  const int64_t B = step_.B, T = step_.T, C = config_.d_model;
  const std::vector<float> d = be_.to_host<float>(dx.view({B * T * C}));
  norms_.assign(T, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      double sum = 0;
      for (int64_t c = 0; c < C; ++c)
        sum += static_cast<double>(d[(b * T + t) * C + c]) * d[(b * T + t) * C + c];
      norms_[T - 1 - t] += sum;
    }
  for (double& n : norms_) n = std::sqrt(n);
}

int64_t GPT::kv_cache_bytes() const {
  const int64_t p = tp_size(), I = config_.d_model / p;
  return (config_.n_layer * max_seq_ * 2 * I + config_.n_head / p * max_seq_) * 4;
}

void GPT::cache_prefill(const int32_t* context, int64_t T, float* out) {
  KERVAN_CHECK(
      has_kv_cache() && T >= 1 && T <= max_seq_,
      "KV-cache prefill of " + std::to_string(T) + " tokens (1 to " + std::to_string(max_seq_) + ")");
  if (cache_.kv.empty()) {
    const int64_t p = tp_size(), I = config_.d_model / p;
    for (int l = 0; l < config_.n_layer; ++l) cache_.kv.push_back(be_.empty({max_seq_, 2 * I}, DType::F32));
    cache_.probs = be_.empty({config_.n_head / p * max_seq_}, DType::F32);
  }
  cache_.length = 0;
  cached_step(context, T, out);
}

void GPT::cache_decode(int32_t token, float* out) {
  KERVAN_CHECK(cache_.length > 0 && cache_.length < max_seq_,
               "KV-cache step with " + std::to_string(cache_.length) + " cached positions (1 to " +
                   std::to_string(max_seq_ - 1) + ")");
  cached_step(&token, 1, out);
}

void GPT::cached_step(const int32_t* tokens, int64_t n, float* out) {
  trunk_forward(tokens, 1, n, true);
  cache_.length += n;
  const Tensor lnf = step_.lnf.view({n, config_.d_model});
  Tensor row = step_.lm.logits.rows(0, 1);
  lm_head_->logits(be_, row, lnf.rows(n - 1, n));
  valid_targets_ = 0;
  logits_row(0, out);
}

void GPT::backward(float loss_scale) {
  KERVAN_CHECK(valid_targets_ > 0, "backward without a forward with targets");
  StepTensors& st = step_;
  const int64_t BT = st.B * st.T, C = config_.d_model;
  Parameter& wte = embedding_->wte();
  Tensor dln = st.dln.view({BT, C});
  const float dloss = loss_scale / static_cast<float>(valid_targets_);
  if (classifier_) {  // d(lnf) is the head's gradient at the labelled rows, 0 elsewhere
    classifier_->backward(be_, cls_.dh, cls_.head, cls_.h, cls_.labels, dloss);
    be_.fill(dln, 0.0f);
    be_.scatter_add_rows(dln, cls_.dh, cls_.ids, 1.0f);
    report_grads(classifier_params_, params_.all().size());
  } else {
    // LM head: d(lnf) = dlogits wte;  d(wte) += dlogits^T lnf. Under tensor parallelism each rank
    // has the part of d(lnf) from its vocabulary columns (summed over the group) and its shard of d(wte).
    lm_head_->backward(be_, dln, st.lm, st.lnf.view({BT, C}), st.targets.view({BT}), dloss);
  }
  const bool sparse_rows = sparse_rows_ && !tp_;
  if (sparse_rows && grad_ready_) grad_ready_(wte);
  const Tensor& last = config_.n_layer ? st.blocks.back().res2 : st.x0;
  ln_f_->backward(be_, st.dres, st.dln, last, st.lnf_mean, st.lnf_rstd);
  report_grads(ln_f_params_, classifier_params_);
  if (record_norms_ && config_.n_layer == 0) record_norms(st.dres);
  for (int l = config_.n_layer - 1; l >= 0; --l) {
    block_backward(blocks_[l], st.blocks[l], l == 0 ? st.x0 : st.blocks[l - 1].res2);
    report_grads(block_params_[l].first, block_params_[l].second);
    if (record_norms_ && l == config_.n_layer - 1) record_norms(st.dres);
  }
  const size_t embedding_end = block_params_.empty() ? ln_f_params_ : block_params_.front().first;
  if (sparse_rows) {
    embedding_->backward_positions(be_, st.dres);
    const Tensor rows = st.dres.view({BT, C}), ids = st.tokens.view({BT});
    if (!sparse_rows_(rows, ids)) be_.scatter_add_rows(wte.grad, rows, ids, 1.0f);
    report_grads(1, embedding_end);  // wpe (index 1; wte, index 0, was reported after the LM head)
  } else {
    embedding_->backward(be_, st.dres, tp_ ? st.local_tokens : st.tokens);
    report_grads(0, embedding_end);  // wte (also the LM head), wpe
  }
}

}  // namespace kervan
