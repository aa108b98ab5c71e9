#include "core/model/recurrent.h"

#include <string>

#include "core/error.h"

namespace kervan {

namespace {
constexpr float kInitStd = 0.02f;

TpGroup* refuse_tp(const RecurrentConfig& config, TpGroup* tp) {
  if (tp && tp->size() > 1)
    throw UserError("parallel.tp = " + std::to_string(tp->size()) + ": recurrent models (model.arch = \"" +
                    recurrent_cell_name(config.cell) +
                    "\") are not split across tensor-parallel ranks; use parallel.tp = 1 (data parallelism "
                    "scales them)");
  return nullptr;
}
}  // namespace

RecurrentLM::RecurrentLM(const RecurrentConfig& config, Backend& backend, int64_t max_batch, int64_t max_seq,
                         TpGroup* tp)
    : config_(config), be_(backend), max_batch_(max_batch), max_seq_(max_seq), arena_(backend) {
  refuse_tp(config_, tp);
  config_.validate();
  const int64_t C = config_.d_model, V = config_.vocab_size, Vp = config_.padded_vocab();
  wte_ = &params_.declare("wte", {Vp, C}, {Init::Kind::Normal, kInitStd, V}, true);
  layers_.reserve(config_.n_layer);
  for (int l = 0; l < config_.n_layer; ++l)
    layers_.emplace_back(params_, "rnn." + std::to_string(l), config_.cell, C, C);
  head_params_ = params_.all().size();
  if (!config_.tied)
    head_ = &params_.declare("lm_head.weight", {Vp, C}, {Init::Kind::Normal, kInitStd, V}, true);
  lm_head_ = std::make_unique<LmHead>(config_.tied ? *wte_ : *head_, nullptr, V, 0, 1.0f, nullptr);
  params_.allocate(be_);
  if (config_.carry_state) {
    carry_h_ = be_.zeros({config_.n_layer, max_batch_, C});
    if (config_.cell == RecurrentCell::Lstm) carry_c_ = be_.zeros({config_.n_layer, max_batch_, C});
  }
  layout(max_batch_, max_seq_);
}

void RecurrentLM::layout(int64_t B, int64_t T) {
  if (B == step_.B && T == step_.T) return;
  KERVAN_CHECK(B <= max_batch_ && T <= max_seq_, "batch larger than the model was built for");
  const int64_t C = config_.d_model, GH = recurrent_gates(config_.cell) * C, Vp = config_.padded_vocab();
  const bool lstm = config_.cell == RecurrentCell::Lstm, gated = config_.cell != RecurrentCell::Rnn;
  ActivationArena& a = arena_;
  a.begin();
  StepTensors s;
  s.B = B;
  s.T = T;
  s.tokens = a.make({T * B}, DType::I32);
  s.targets = a.make({T * B}, DType::I32);
  s.x0 = a.make({T, B, C});
  for (int l = 0; l < config_.n_layer; ++l) {
    RecurrentSaved r;
    r.xg = a.make({T, B, GH});
    r.hs = a.make({T + 1, B, C});
    if (lstm) r.cs = a.make({T + 1, B, C});
    if (gated) r.gates = a.make({T, B, 4 * C});
    s.layers.push_back(std::move(r));
    if (config_.residual) s.res.push_back(a.make({T, B, C}));
  }
  s.lm.logits = a.make({T * B, Vp});
  s.lm.losses = a.make({T * B});
  s.scratch.hg = a.make({B, GH});
  s.scratch.dgx = a.make({T, B, GH});
  if (config_.cell == RecurrentCell::Gru) s.scratch.dgh = a.make({T, B, GH});
  s.scratch.dh = a.make({B, C});
  if (lstm) s.scratch.dc = a.make({B, C});
  s.scratch.tmp = a.make({B, C});
  s.dres = a.make({T, B, C});
  s.dtmp = a.make({T, B, C});
  a.end();
  step_ = std::move(s);
}

void RecurrentLM::init_weights(uint64_t seed) {
  params_.initialize(be_, seed);
  if (carry_h_.defined()) be_.fill(carry_h_, 0.0f);
  if (carry_c_.defined()) be_.fill(carry_c_, 0.0f);
}

void RecurrentLM::set_replica(int dp_rank, int dp_size) {
  dp_rank_ = dp_rank;
  dp_size_ = dp_size;
}

void RecurrentLM::state(StateDict& out) {
  params_.append_state(out, "model/", params_.values(), 0);
  auto carried = [&](const char* name, const Tensor& t) {
    if (!t.defined()) return;
    const int64_t L = config_.n_layer, B = max_batch_, C = config_.d_model;
    StateTensor s;
    s.name = name;
    s.slice = {{L, B * dp_size_, C}, {0, B * dp_rank_, 0}, {L, B, C}, 0, t.numel()};
    s.data = t;
    s.replica = dp_rank_;  // every replica holds its own rows
    out.tensors.push_back(std::move(s));
  };
  carried("carry/h", carry_h_);
  carried("carry/c", carry_c_);
}

void RecurrentLM::load_state(const StateDict& in) {
  StateDict own;
  state(own);
  copy_state_tensors(be_, own, in);
}

std::vector<float> RecurrentLM::carried_state(int layer) {
  KERVAN_CHECK(carry_h_.defined(), "no carried state without model.carry_state");
  const int64_t n = max_batch_ * config_.d_model;
  return be_.to_host<float>(carry_h_.slice_flat(layer * n, {n}));
}

float RecurrentLM::forward(const Batch& batch) {
  const int64_t B = batch.B, T = batch.T, C = config_.d_model;
  KERVAN_CHECK(!batch.carry_state || carry_h_.defined(), "a carried forward needs model.carry_state");
  KERVAN_CHECK(!batch.carry_state || B == max_batch_, "a carried forward takes full micro-batches");
  layout(B, T);
  StepTensors& st = step_;
  // Time-major: position (b, t) is row t*B + b.
  host_tokens_.resize(B * T);
  host_targets_.resize(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      host_tokens_[t * B + b] = batch.tokens[b * T + t];
      host_targets_[t * B + b] = batch.targets ? batch.targets[b * T + t] : -1;
    }
  be_.copy_from_host(st.tokens, host_tokens_.data());
  Tensor x0 = st.x0.view({T * B, C});
  be_.gather_rows(x0, wte_->value, st.tokens, false);
  const bool lstm = config_.cell == RecurrentCell::Lstm;
  const bool from_carry = batch.carry_state && !batch.reset_state;
  for (int l = 0; l < config_.n_layer; ++l) {
    RecurrentSaved& s = st.layers[l];
    const int64_t off = l * B * C;
    Tensor h0 = s.hs.rows(0, 1).view({B, C});
    Tensor c0 = lstm ? s.cs.rows(0, 1).view({B, C}) : Tensor{};
    if (from_carry) {
      be_.copy(h0, carry_h_.slice_flat(off, {B, C}));
      if (lstm) be_.copy(c0, carry_c_.slice_flat(off, {B, C}));
    } else {
      be_.fill(h0, 0.0f);
      if (lstm) be_.fill(c0, 0.0f);
    }
    const Tensor x = l == 0 ? st.x0 : (config_.residual ? st.res[l - 1] : st.layers[l - 1].hs.rows(1, T + 1));
    layers_[l].forward(be_, s, st.scratch, x);
    if (config_.residual) be_.add(st.res[l], x, s.hs.rows(1, T + 1));
    if (batch.carry_state) {
      Tensor ch = carry_h_.slice_flat(off, {B, C});
      be_.copy(ch, s.hs.rows(T, T + 1).view({B, C}));
      if (lstm) {
        Tensor cc = carry_c_.slice_flat(off, {B, C});
        be_.copy(cc, s.cs.rows(T, T + 1).view({B, C}));
      }
    }
  }
  const Tensor top = (config_.n_layer == 0 ? st.x0
                      : config_.residual   ? st.res.back()
                                           : st.layers.back().hs.rows(1, T + 1))
                         .view({T * B, C});
  if (!batch.targets) {
    lm_head_->logits(be_, st.lm.logits, top);
    valid_targets_ = 0;
    return 0.0f;
  }
  be_.copy_from_host(st.targets, host_targets_.data());
  const LossSum loss = lm_head_->forward(be_, st.lm, top, st.targets, host_targets_.data());
  valid_targets_ = loss.count;
  return valid_targets_ ? static_cast<float>(loss.sum / valid_targets_) : 0.0f;
}

void RecurrentLM::next_token_logits(const int32_t* context, int64_t T, float* out) {
  forward(Batch{1, T, context, nullptr});
  lm_head_->full_row(be_, step_.lm.logits, T - 1, out);  // B = 1: row t is position t
}

void RecurrentLM::backward(float loss_scale) {
  KERVAN_CHECK(valid_targets_ > 0, "backward without a forward with targets");
  StepTensors& st = step_;
  const int64_t B = st.B, T = st.T, C = config_.d_model;
  const float dloss = loss_scale / static_cast<float>(valid_targets_);
  const int L = config_.n_layer;
  auto output = [&](int l) {
    return l < 0 ? st.x0 : config_.residual ? st.res[l] : st.layers[l].hs.rows(1, T + 1);
  };
  Tensor dtop = st.dres.view({T * B, C});
  lm_head_->backward(be_, dtop, st.lm, output(L - 1).view({T * B, C}), st.targets, dloss);
  const bool sparse_rows = config_.tied && sparse_rows_;
  if (!config_.tied) report_grads(head_params_, params_.all().size());
  if (sparse_rows && grad_ready_) grad_ready_(*wte_);
  if (record_norms_) norms_.clear();
  for (int l = L - 1; l >= 0; --l) {
    be_.fill(st.scratch.dh, 0.0f);  // truncated BPTT: nothing flows back from the next window
    if (st.scratch.dc.defined()) be_.fill(st.scratch.dc, 0.0f);
    const Tensor x = output(l - 1);
    layers_[l].backward(be_, &st.dtmp, st.dres, x, st.layers[l], st.scratch,
                        record_norms_ && l == L - 1 ? &norms_ : nullptr);
    if (config_.residual)
      be_.add(st.dres, st.dres, st.dtmp);
    else
      be_.copy(st.dres, st.dtmp);
    const size_t first = 1 + static_cast<size_t>(l) * 4;
    report_grads(first, first + 4);
  }
  const Tensor rows = st.dres.view({T * B, C});
  if (sparse_rows) {
    if (!sparse_rows_(rows, st.tokens)) be_.scatter_add_rows(wte_->grad, rows, st.tokens, 1.0f);
  } else {
    be_.scatter_add_rows(wte_->grad, rows, st.tokens, 1.0f);
    report_grads(0, 1);
  }
}

}  // namespace kervan
