#include "core/model/bert.h"

#include <string>

#include "core/error.h"
#include "core/model/tp_check.h"

namespace kervan {

namespace {
constexpr float kInitStd = 0.02f;
constexpr float kLayerNormEps = 1e-12f;

// The first m rows of a head's tensors (allocated for B*T rows).
Tensor first(const Tensor& t, int64_t m) {
  Shape s = t.shape();
  s[0] = m;
  return t.slice_flat(0, s);
}
LmHeadTensors first(const LmHeadTensors& t, int64_t m) {
  return {first(t.logits, m), first(t.losses, m), first(t.ce_max, m), t.ce_sum_tgt.slice_flat(0, {2, m})};
}
MlmHeadTensors first(const MlmHeadTensors& t, int64_t m) {
  return {first(t.dense, m),   first(t.act, m), first(t.ln, m),  first(t.ln_mean, m),
          first(t.ln_rstd, m), first(t.lm, m),  first(t.dln, m), first(t.dact, m)};
}
ClassificationTensors first(const ClassificationTensors& t, int64_t m) {
  return {first(t.pre, m), first(t.pooled, m), first(t.logits, m), first(t.losses, m), first(t.dpooled, m)};
}
}  // namespace

Bert::Bert(const BertConfig& config, Backend& backend, int64_t max_batch, int64_t max_seq, TpGroup* tp,
           int64_t num_classes)
    : config_(config),
      be_(backend),
      tp_((config.validate(), checked_tp(tp, {{config.n_head, "model.n_head"},
                                              {config.padded_vocab(), "the padded vocabulary"},
                                              {config.d_ff(), "the feed-forward width 4 * model.d_model"}}))),
      max_batch_(max_batch),
      max_seq_(max_seq),
      arena_(backend) {
  KERVAN_CHECK(max_seq <= config.max_seq_len, "sequence longer than the position table");
  const int64_t C = config_.d_model;
  embedding_ = std::make_unique<Embedding>(params_, config_.vocab_size, config_.padded_vocab(),
                                           config_.max_seq_len, C, kInitStd, tp_, config_.type_vocab);
  emb_ln_ = std::make_unique<LayerNorm>(params_, "emb_ln", C, kLayerNormEps);
  blocks_.reserve(config_.n_layer);
  for (int l = 0; l < config_.n_layer; ++l) {
    const std::string h = "h." + std::to_string(l);
    const size_t begin = params_.all().size();
    blocks_.push_back(Block{
        SelfAttention(params_, h + ".attn", C, {.n_head = config_.n_head}, tp_),
        LayerNorm(params_, h + ".ln_1", C, kLayerNormEps),
        Mlp(params_, h + ".mlp", C, config_.d_ff(), kInitStd, kInitStd, {.act = Activation::GeluErf}, tp_),
        LayerNorm(params_, h + ".ln_2", C, kLayerNormEps)});
    block_params_.emplace_back(begin, params_.all().size());
  }
  head_params_ = params_.all().size();
  if (num_classes > 0)
    classifier_ =
        std::make_unique<ClassificationHead>(params_, "cls", C, num_classes, /*pooler=*/true, kInitStd);
  else
    mlm_ = std::make_unique<MlmHead>(params_, "mlm", C, embedding_->wte(), config_.vocab_size,
                                     embedding_->vocab_begin(), kInitStd, tp_);
  params_.allocate(be_);
  layout(max_batch_, max_seq_);
}

void Bert::layout(int64_t B, int64_t T) {
  if (B == step_.B && T == step_.T) return;
  KERVAN_CHECK(B <= max_batch_ && T <= max_seq_, "batch larger than the model was built for");
  const int64_t p = tp_ ? tp_->size() : 1, C = config_.d_model, NH = config_.n_head / p;
  const int64_t C3 = 3 * C / p, Cl = C / p, H = config_.d_ff() / p, Vl = config_.padded_vocab() / p,
                N = B * T;
  ActivationArena& a = arena_;
  a.begin();
  StepTensors s;
  s.B = B;
  s.T = T;
  s.tokens = a.make({B, T}, DType::I32);
  s.local_tokens = a.make({B, T}, DType::I32);
  s.types = a.make({B, T}, DType::I32);
  s.lengths = a.make({B}, DType::I32);
  s.x0 = a.make({B, T, C});
  s.emb = a.make({B, T, C});
  s.emb_mean = a.make({N});
  s.emb_rstd = a.make({N});
  for (int l = 0; l < config_.n_layer; ++l) {
    BlockSaved b;
    b.attn.qkv = a.make({B, T, C3});
    b.attn.probs = a.make(be_.attention_saved_shape(B, NH, T, T));
    b.attn.att = a.make({B, T, Cl});
    b.res1 = a.make({B, T, C});
    b.x1 = a.make({B, T, C});
    b.ln1_mean = a.make({N});
    b.ln1_rstd = a.make({N});
    b.mlp.fc = a.make({B, T, H});
    b.mlp.act = a.make({B, T, H});
    b.res2 = a.make({B, T, C});
    b.x2 = a.make({B, T, C});
    b.ln2_mean = a.make({N});
    b.ln2_rstd = a.make({N});
    s.blocks.push_back(std::move(b));
  }
  s.y = a.make({B, T, C});
  s.dres = a.make({B, T, C});
  s.dln = a.make({B, T, C});
  s.dtmp = a.make({B, T, C});
  s.attn_scratch = {a.make({B, T, Cl}), a.make({B, T, C3}),
                    a.make(be_.attention_scratch_shape(B, NH, T, T, false))};
  s.mlp_scratch.dhidden = a.make({B, T, H});
  s.row_ids = a.make({N}, DType::I32);
  s.row_targets = a.make({N}, DType::I32);
  s.h = a.make({N, C});
  s.dh = a.make({N, C});
  if (mlm_)
    s.mlm = {a.make({N, C}), a.make({N, C}), a.make({N, C}),
             a.make({N}),    a.make({N}),    {a.make({N, Vl}), a.make({N}), a.make({N}), a.make({2, N})},
             a.make({N, C}), a.make({N, C})};
  if (classifier_) {
    const int64_t K = classifier_->num_classes();
    s.cls = {a.make({N, C}), a.make({N, C}), a.make({N, K}), a.make({N}), a.make({N, C})};
  }
  a.end();
  step_ = std::move(s);
}

AttentionContext Bert::attention_context() const {
  return {padded_ ? &step_.lengths : nullptr, nullptr, nullptr};
}

void Bert::block_forward(const Block& blk, BlockSaved& s, const Tensor& x, const AttentionContext& ctx) {
  blk.attn.forward(be_, step_.y, s.attn, x, ctx);
  be_.add(s.res1, x, step_.y);
  blk.ln_1.forward(be_, s.x1, s.ln1_mean, s.ln1_rstd, s.res1);
  blk.mlp.forward(be_, step_.y, s.mlp, s.x1);
  be_.add(s.res2, s.x1, step_.y);
  blk.ln_2.forward(be_, s.x2, s.ln2_mean, s.ln2_rstd, s.res2);
}

// On entry step_.dres holds d(block output x2); on exit d(block input x).
void Bert::block_backward(const Block& blk, const BlockSaved& s, const Tensor& x,
                          const AttentionContext& ctx) {
  StepTensors& st = step_;
  blk.ln_2.backward(be_, st.dtmp, st.dres, s.res2, s.ln2_mean, s.ln2_rstd);  // d(res2)
  blk.mlp.backward(be_, st.dln, st.dtmp, s.x1, s.mlp, st.mlp_scratch);
  be_.add(st.dres, st.dtmp, st.dln);  // d(x1) = d(res2) + through the mlp
  blk.ln_1.backward(be_, st.dtmp, st.dres, s.res1, s.ln1_mean, s.ln1_rstd);  // d(res1)
  blk.attn.backward(be_, st.dln, st.dtmp, x, s.attn, st.attn_scratch, ctx);
  be_.add(st.dres, st.dtmp, st.dln);  // d(x) = d(res1) + through attention
}

float Bert::forward(const Batch& batch) {
  const int64_t B = batch.B, T = batch.T, N = B * T, C = config_.d_model;
  layout(B, T);
  StepTensors& st = step_;
  be_.copy_from_host(st.tokens, batch.tokens);
  if (tp_) be_.copy_from_host(st.local_tokens, embedding_->local_ids(batch.tokens, N).data());
  if (batch.token_types) {
    for (int64_t i = 0; i < N; ++i)
      KERVAN_CHECK(batch.token_types[i] >= 0 && batch.token_types[i] < config_.type_vocab,
                   "token type out of range");
    be_.copy_from_host(st.types, batch.token_types);
  } else {
    be_.fill(st.types, 0.0f);
  }
  padded_ = batch.lengths != nullptr;
  if (padded_) be_.copy_from_host(st.lengths, batch.lengths);
  const AttentionContext ctx = attention_context();

  embedding_->forward(be_, st.x0, tp_ ? st.local_tokens : st.tokens, &st.types);
  emb_ln_->forward(be_, st.emb, st.emb_mean, st.emb_rstd, st.x0);
  const Tensor* x = &st.emb;
  for (int l = 0; l < config_.n_layer; ++l) {
    block_forward(blocks_[l], st.blocks[l], *x, ctx);
    x = &st.blocks[l].x2;
  }
  rows_ = batch.targets ? labelled_rows(batch.targets, N) : LabelledRows{};
  const int64_t M = rows_.size();
  if (M == 0) return 0.0f;
  Tensor ids = first(st.row_ids, M), targets = first(st.row_targets, M), h = first(st.h, M);
  be_.copy_from_host(ids, rows_.rows.data());
  be_.copy_from_host(targets, rows_.targets.data());
  be_.gather_rows(h, x->view({N, C}), ids, false);
  LossSum loss;
  if (classifier_) {
    for (const int32_t label : rows_.targets)
      KERVAN_CHECK(label < classifier_->num_classes(),
                   "label " + std::to_string(label) + " outside the classes");
    ClassificationTensors t = first(st.cls, M);
    loss = classifier_->forward(be_, t, h, targets, rows_.targets.data());
  } else {
    MlmHeadTensors t = first(st.mlm, M);
    loss = mlm_->forward(be_, t, h, targets, rows_.targets.data());
  }
  return static_cast<float>(loss.sum / static_cast<double>(M));
}

std::vector<float> Bert::class_logits() {
  if (!classifier_ || rows_.size() == 0) return {};
  return be_.to_host<float>(first(step_.cls.logits, rows_.size()));
}

void Bert::backward(float loss_scale) {
  const int64_t M = rows_.size();
  KERVAN_CHECK(M > 0, "backward without a forward with targets");
  StepTensors& st = step_;
  const int64_t N = st.B * st.T, C = config_.d_model;
  const Tensor ids = first(st.row_ids, M), targets = first(st.row_targets, M), h = first(st.h, M);
  Tensor dh = first(st.dh, M);
  const float dloss = loss_scale / static_cast<float>(M);
  if (classifier_) {
    ClassificationTensors t = first(st.cls, M);
    classifier_->backward(be_, dh, t, h, targets, dloss);
  } else {
    MlmHeadTensors t = first(st.mlm, M);
    mlm_->backward(be_, dh, t, h, targets, dloss);
  }
  // The head's rows scatter back into d(last block output); other positions get no gradient.
  Tensor dres = st.dres.view({N, C});
  be_.fill(dres, 0.0f);
  be_.scatter_add_rows(dres, dh, ids, 1.0f);
  // The tied word embedding (index 0) is reported with the embeddings, at the end.
  report_grads(head_params_, params_.all().size());
  const AttentionContext ctx = attention_context();
  for (int l = config_.n_layer - 1; l >= 0; --l) {
    block_backward(blocks_[l], st.blocks[l], l == 0 ? st.emb : st.blocks[l - 1].x2, ctx);
    report_grads(block_params_[l].first, block_params_[l].second);
  }
  emb_ln_->backward(be_, st.dtmp, st.dres, st.x0, st.emb_mean, st.emb_rstd);
  embedding_->backward(be_, st.dtmp, tp_ ? st.local_tokens : st.tokens, &st.types);
  report_grads(0, block_params_.empty() ? head_params_ : block_params_.front().first);
}

void Bert::state(StateDict& out) {
  params_.append_state(out, "model/", params_.values(), 0);
}

void Bert::load_state(const StateDict& in) {
  StateDict own;
  state(own);
  copy_state_tensors(be_, own, in);
}

}  // namespace kervan
