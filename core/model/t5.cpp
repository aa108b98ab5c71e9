#include "core/model/t5.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "core/model/tp_check.h"

namespace kervan {

namespace {
AttentionOptions attention_options(const T5Config& c, bool causal) {
  const float C = static_cast<float>(c.d_model), hd = static_cast<float>(c.head_dim());
  return {.n_head = c.n_head,
          .head_dim = c.head_dim(),
          .causal = causal,
          .bias = false,
          .scaled = false,
          .q_std = 1.0f / std::sqrt(C * hd),
          .kv_std = 1.0f / std::sqrt(C),
          .proj_std = 1.0f / std::sqrt(c.n_head * hd)};
}

Mlp feed_forward(ParameterSet& params, const std::string& name, const T5Config& c, TpGroup* tp) {
  const MlpOptions opt = c.ffn == T5Ffn::Relu ? MlpOptions{Activation::Relu, false, false}
                                              : MlpOptions{Activation::GeluTanh, true, false};
  return Mlp(params, name, c.d_model, c.d_ff, 1.0f / std::sqrt(static_cast<float>(c.d_model)),
             1.0f / std::sqrt(static_cast<float>(c.d_ff)), opt, tp);
}
}  // namespace

T5::T5(const T5Config& config, Backend& backend, int64_t max_batch, int64_t max_seq, int64_t max_decoder_seq,
       TpGroup* tp)
    : config_(config),
      be_(backend),
      tp_((config.validate(), checked_tp(tp, {{config.n_head, "model.n_head"},
                                              {config.padded_vocab(), "the padded vocabulary"},
                                              {config.d_ff, "the feed-forward width"}}))),
      max_batch_(max_batch),
      max_seq_(max_seq),
      max_decoder_seq_(max_decoder_seq),
      arena_(backend) {
  const int64_t C = config_.d_model;
  const float rel_std = 1.0f / std::sqrt(static_cast<float>(C));
  embedding_ =
      std::make_unique<Embedding>(params_, config_.vocab_size, config_.padded_vocab(), 0, C, 1.0f, tp_);
  enc_rel_param_ = params_.all().size();
  enc_rel_ = std::make_unique<RelativePositionBias>(params_, "enc.rel", config_.n_head, true, rel_std, tp_,
                                                    config_.num_buckets, config_.max_distance);
  for (int l = 0; l < config_.n_layer; ++l) {
    const std::string h = "enc." + std::to_string(l);
    const size_t begin = params_.all().size();
    enc_blocks_.push_back(
        EncoderBlock{RmsNorm(params_, h + ".ln_1", C),
                     SelfAttention(params_, h + ".attn", C, attention_options(config_, false), tp_),
                     RmsNorm(params_, h + ".ln_2", C), feed_forward(params_, h + ".mlp", config_, tp_)});
    enc_params_.emplace_back(begin, params_.all().size());
  }
  enc_ln_f_param_ = params_.all().size();
  enc_ln_f_ = std::make_unique<RmsNorm>(params_, "enc.ln_f", C);
  dec_rel_param_ = params_.all().size();
  dec_rel_ = std::make_unique<RelativePositionBias>(params_, "dec.rel", config_.n_head, false, rel_std, tp_,
                                                    config_.num_buckets, config_.max_distance);
  for (int l = 0; l < config_.n_layer; ++l) {
    const std::string h = "dec." + std::to_string(l);
    const size_t begin = params_.all().size();
    dec_blocks_.push_back(
        DecoderBlock{RmsNorm(params_, h + ".ln_1", C),
                     SelfAttention(params_, h + ".attn", C, attention_options(config_, true), tp_),
                     RmsNorm(params_, h + ".ln_2", C),
                     CrossAttention(params_, h + ".cross", C, attention_options(config_, false), tp_),
                     RmsNorm(params_, h + ".ln_3", C), feed_forward(params_, h + ".mlp", config_, tp_)});
    dec_params_.emplace_back(begin, params_.all().size());
  }
  dec_ln_f_param_ = params_.all().size();
  dec_ln_f_ = std::make_unique<RmsNorm>(params_, "dec.ln_f", C);
  const Parameter& wte = embedding_->wte();
  if (!config_.tied_head())
    lm_weight_ = &params_.declare("lm_head", wte.shape, {Init::Kind::Normal, 1.0f, config_.vocab_size}, true,
                                  wte.sharding);
  lm_head_ = std::make_unique<LmHead>(
      lm_weight_ ? *lm_weight_ : wte, nullptr, config_.vocab_size, embedding_->vocab_begin(),
      config_.tied_head() ? 1.0f / std::sqrt(static_cast<float>(C)) : 1.0f, tp_);
  params_.allocate(be_);
  layout(max_batch_, max_seq_, max_decoder_seq_);
}

T5::StackTensors T5::stack_layout(const RelativePositionBias& rel, int64_t B, int64_t T) {
  const int64_t p = tp_ ? tp_->size() : 1, C = config_.d_model, NH = config_.n_head / p;
  const int64_t I = config_.n_head * config_.head_dim() / p, H = config_.d_ff / p;
  const int64_t fc = config_.ffn == T5Ffn::GatedGelu ? 2 * H : H;
  ActivationArena& a = arena_;
  StackTensors s;
  s.tokens = a.make({B, T}, DType::I32);
  s.local_tokens = a.make({B, T}, DType::I32);
  s.x0 = a.make({B, T, C});
  s.buckets = a.make({T, T}, DType::I32);
  be_.copy_from_host(s.buckets, rel.buckets(T, T).data());
  s.bias = a.make({NH, T, T});
  s.dbias = a.make({NH, T, T});
  s.out = a.make({B, T, C});
  s.out_rstd = a.make({B * T});
  s.y = a.make({B, T, C});
  s.dres = a.make({B, T, C});
  s.dln = a.make({B, T, C});
  s.dtmp = a.make({B, T, C});
  s.attn_scratch = {a.make({B, T, I}), a.make({B, T, 3 * I}),
                    a.make(be_.attention_scratch_shape(B, NH, T, T, true))};
  s.mlp_scratch = {a.make({B, T, H}), a.make({B, T, fc})};
  return s;
}

void T5::layout(int64_t B, int64_t Te, int64_t Td) {
  if (B == step_.B && Te == step_.Te && Td == step_.Td) return;
  KERVAN_CHECK(B <= max_batch_ && Te <= max_seq_ && Td <= max_decoder_seq_,
               "batch larger than the model was built for");
  const int64_t p = tp_ ? tp_->size() : 1, C = config_.d_model, NH = config_.n_head / p;
  const int64_t I = config_.n_head * config_.head_dim() / p, H = config_.d_ff / p;
  const int64_t fc = config_.ffn == T5Ffn::GatedGelu ? 2 * H : H, Vl = config_.padded_vocab() / p;
  ActivationArena& a = arena_;
  a.begin();
  StepTensors s;
  s.B = B;
  s.Te = Te;
  s.Td = Td;
  s.lengths = a.make({B}, DType::I32);
  s.targets = a.make({B * Td}, DType::I32);
  s.enc = stack_layout(*enc_rel_, B, Te);
  s.dec = stack_layout(*dec_rel_, B, Td);
  auto rms = [&](int64_t T) { return std::pair{a.make({B, T, C}), a.make({B * T})}; };
  for (int l = 0; l < config_.n_layer; ++l) {
    EncoderSaved e;
    std::tie(e.n1, e.n1_rstd) = rms(Te);
    e.attn = {a.make({B, Te, 3 * I}), a.make(be_.attention_saved_shape(B, NH, Te, Te)), a.make({B, Te, I})};
    e.res1 = a.make({B, Te, C});
    std::tie(e.n2, e.n2_rstd) = rms(Te);
    e.mlp = {a.make({B, Te, fc}), a.make({B, Te, H})};
    e.res2 = a.make({B, Te, C});
    s.enc_blocks.push_back(std::move(e));
  }
  for (int l = 0; l < config_.n_layer; ++l) {
    DecoderSaved d;
    std::tie(d.n1, d.n1_rstd) = rms(Td);
    d.attn = {a.make({B, Td, 3 * I}), a.make(be_.attention_saved_shape(B, NH, Td, Td)), a.make({B, Td, I})};
    d.res1 = a.make({B, Td, C});
    std::tie(d.n2, d.n2_rstd) = rms(Td);
    d.cross = {a.make({B, Td, I}), a.make({B, Te, 2 * I}), a.make(be_.attention_saved_shape(B, NH, Td, Te)),
               a.make({B, Td, I})};
    d.res2 = a.make({B, Td, C});
    std::tie(d.n3, d.n3_rstd) = rms(Td);
    d.mlp = {a.make({B, Td, fc}), a.make({B, Td, H})};
    d.res3 = a.make({B, Td, C});
    s.dec_blocks.push_back(std::move(d));
  }
  s.cross_scratch = {a.make({B, Td, I}), a.make({B, Td, I}), a.make({B, Te, 2 * I}),
                     a.make(be_.attention_scratch_shape(B, NH, Td, Te, false)), a.make({B, Te, C})};
  s.dmemory = a.make({B, Te, C});
  s.lm = {a.make({B * Td, Vl}), a.make({B * Td}), a.make({B * Td}), a.make({2, B * Td})};
  a.end();
  step_ = std::move(s);
}

float T5::forward(const Batch& batch) {
  const int64_t B = batch.B, Te = batch.T, Td = batch.T_dec;
  KERVAN_CHECK(batch.decoder_tokens && Td > 0, "T5 needs decoder tokens");
  layout(B, Te, Td);
  StepTensors& st = step_;
  padded_ = batch.lengths != nullptr;
  if (padded_) be_.copy_from_host(st.lengths, batch.lengths);
  auto embed = [&](StackTensors& s, const int32_t* tokens, int64_t T) {
    be_.copy_from_host(s.tokens, tokens);
    if (tp_) be_.copy_from_host(s.local_tokens, embedding_->local_ids(tokens, B * T).data());
    embedding_->forward(be_, s.x0, tp_ ? s.local_tokens : s.tokens);
  };

  StackTensors& enc = st.enc;
  embed(enc, batch.tokens, Te);
  enc_rel_->forward(be_, enc.bias, enc.buckets);
  const AttentionContext enc_ctx{lengths(), &enc.bias, nullptr};
  const Tensor* x = &enc.x0;
  for (int l = 0; l < config_.n_layer; ++l) {
    const EncoderBlock& blk = enc_blocks_[l];
    EncoderSaved& s = st.enc_blocks[l];
    blk.ln_1.forward(be_, s.n1, s.n1_rstd, *x);
    blk.attn.forward(be_, enc.y, s.attn, s.n1, enc_ctx);
    be_.add(s.res1, *x, enc.y);
    blk.ln_2.forward(be_, s.n2, s.n2_rstd, s.res1);
    blk.mlp.forward(be_, enc.y, s.mlp, s.n2);
    be_.add(s.res2, s.res1, enc.y);
    x = &s.res2;
  }
  enc_ln_f_->forward(be_, enc.out, enc.out_rstd, *x);
  const Tensor& memory = enc.out;

  StackTensors& dec = st.dec;
  embed(dec, batch.decoder_tokens, Td);
  dec_rel_->forward(be_, dec.bias, dec.buckets);
  const AttentionContext dec_ctx{nullptr, &dec.bias, nullptr};
  x = &dec.x0;
  for (int l = 0; l < config_.n_layer; ++l) {
    const DecoderBlock& blk = dec_blocks_[l];
    DecoderSaved& s = st.dec_blocks[l];
    blk.ln_1.forward(be_, s.n1, s.n1_rstd, *x);
    blk.attn.forward(be_, dec.y, s.attn, s.n1, dec_ctx);
    be_.add(s.res1, *x, dec.y);
    blk.ln_2.forward(be_, s.n2, s.n2_rstd, s.res1);
    blk.cross.forward(be_, dec.y, s.cross, s.n2, memory, lengths());
    be_.add(s.res2, s.res1, dec.y);
    blk.ln_3.forward(be_, s.n3, s.n3_rstd, s.res2);
    blk.mlp.forward(be_, dec.y, s.mlp, s.n3);
    be_.add(s.res3, s.res2, dec.y);
    x = &s.res3;
  }
  dec_ln_f_->forward(be_, dec.out, dec.out_rstd, *x);
  const Tensor out = dec.out.view({B * Td, config_.d_model});
  if (!batch.targets) {
    lm_head_->logits(be_, st.lm.logits, out);
    valid_targets_ = 0;
    return 0.0f;
  }
  be_.copy_from_host(st.targets, batch.targets);
  const LossSum loss = lm_head_->forward(be_, st.lm, out, st.targets, batch.targets);
  valid_targets_ = loss.count;
  return valid_targets_ ? static_cast<float>(loss.sum / valid_targets_) : 0.0f;
}

void T5::decoder_logits_row(int64_t n, float* out) {
  lm_head_->full_row(be_, step_.lm.logits, n, out);
}

// On entry step_.dec.dres holds d(block l's output); on exit d(its input). d(memory) and the
// decoder's d(bias) accumulate.
void T5::decoder_backward(int l) {
  StepTensors& st = step_;
  StackTensors& d = st.dec;
  const DecoderBlock& blk = dec_blocks_[l];
  const DecoderSaved& s = st.dec_blocks[l];
  const Tensor& x = l == 0 ? d.x0 : st.dec_blocks[l - 1].res3;
  blk.mlp.backward(be_, d.dln, d.dres, s.n3, s.mlp, d.mlp_scratch);
  blk.ln_3.backward(be_, d.dtmp, d.dln, s.res2, s.n3_rstd);
  be_.add(d.dres, d.dres, d.dtmp);  // d(res2)
  blk.cross.backward(be_, d.dln, st.dmemory, d.dres, s.n2, st.enc.out, s.cross, st.cross_scratch, lengths());
  blk.ln_2.backward(be_, d.dtmp, d.dln, s.res1, s.n2_rstd);
  be_.add(d.dres, d.dres, d.dtmp);  // d(res1)
  blk.attn.backward(be_, d.dln, d.dres, s.n1, s.attn, d.attn_scratch, {nullptr, &d.bias, &d.dbias});
  blk.ln_1.backward(be_, d.dtmp, d.dln, x, s.n1_rstd);
  be_.add(d.dres, d.dres, d.dtmp);  // d(x)
}

// As decoder_backward, for encoder block l (its d(bias) accumulates).
void T5::encoder_backward(int l) {
  StepTensors& st = step_;
  StackTensors& e = st.enc;
  const EncoderBlock& blk = enc_blocks_[l];
  const EncoderSaved& s = st.enc_blocks[l];
  const Tensor& x = l == 0 ? e.x0 : st.enc_blocks[l - 1].res2;
  blk.mlp.backward(be_, e.dln, e.dres, s.n2, s.mlp, e.mlp_scratch);
  blk.ln_2.backward(be_, e.dtmp, e.dln, s.res1, s.n2_rstd);
  be_.add(e.dres, e.dres, e.dtmp);  // d(res1)
  blk.attn.backward(be_, e.dln, e.dres, s.n1, s.attn, e.attn_scratch, {lengths(), &e.bias, &e.dbias});
  blk.ln_1.backward(be_, e.dtmp, e.dln, x, s.n1_rstd);
  be_.add(e.dres, e.dres, e.dtmp);  // d(x)
}

void T5::backward(float loss_scale) {
  KERVAN_CHECK(valid_targets_ > 0, "backward without a forward with targets");
  StepTensors& st = step_;
  StackTensors &enc = st.enc, &dec = st.dec;
  const int64_t C = config_.d_model, Nd = st.B * st.Td;
  Tensor dout = dec.dln.view({Nd, C});
  lm_head_->backward(be_, dout, st.lm, dec.out.view({Nd, C}), st.targets,
                     loss_scale / static_cast<float>(valid_targets_));
  if (lm_weight_) report_grads(params_.all().size() - 1, params_.all().size());
  const Tensor& dec_last = config_.n_layer ? st.dec_blocks.back().res3 : dec.x0;
  dec_ln_f_->backward(be_, dec.dres, dec.dln, dec_last, dec.out_rstd);
  report_grads(dec_ln_f_param_, dec_ln_f_param_ + 1);
  be_.fill(st.dmemory, 0.0f);
  be_.fill(dec.dbias, 0.0f);
  for (int l = config_.n_layer - 1; l >= 0; --l) {
    decoder_backward(l);
    report_grads(dec_params_[l].first, dec_params_[l].second);
  }
  dec_rel_->backward(be_, dec.dbias, dec.buckets);
  report_grads(dec_rel_param_, dec_rel_param_ + 1);
  embedding_->backward(be_, dec.dres, tp_ ? dec.local_tokens : dec.tokens);

  const Tensor& enc_last = config_.n_layer ? st.enc_blocks.back().res2 : enc.x0;
  enc_ln_f_->backward(be_, enc.dres, st.dmemory, enc_last, enc.out_rstd);
  report_grads(enc_ln_f_param_, enc_ln_f_param_ + 1);
  be_.fill(enc.dbias, 0.0f);
  for (int l = config_.n_layer - 1; l >= 0; --l) {
    encoder_backward(l);
    report_grads(enc_params_[l].first, enc_params_[l].second);
  }
  enc_rel_->backward(be_, enc.dbias, enc.buckets);
  report_grads(enc_rel_param_, enc_rel_param_ + 1);
  embedding_->backward(be_, enc.dres, tp_ ? enc.local_tokens : enc.tokens);
  report_grads(0, 1);  // wte: both lookups and, tied, the LM head
}

void T5::state(StateDict& out) {
  params_.append_state(out, "model/", params_.values(), 0);
}

void T5::load_state(const StateDict& in) {
  StateDict own;
  state(own);
  copy_state_tensors(be_, own, in);
}

}  // namespace kervan
