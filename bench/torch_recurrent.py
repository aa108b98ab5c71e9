#!/usr/bin/python3
"""A recurrent language model in PyTorch with kervan's math (core/model/recurrent.h): token
embedding, n_layer single-layer nn.RNN (tanh) / nn.LSTM / nn.GRU modules of d_model units
(optionally residual), and an LM head tied to the embedding or of its own, no bias. Used by
tests/fixtures/make_recurrent_fixtures.py (parity) and by the training benchmark below
(`kervan bench train --arch lstm|gru` is its peer; bench/compare_torch.sh runs both)."""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CELLS = {"rnn": lambda c: nn.RNN(c, c, nonlinearity="tanh"), "lstm": lambda c: nn.LSTM(c, c),
         "gru": lambda c: nn.GRU(c, c)}


class RecurrentLM(nn.Module):
    def __init__(self, cell, n_layer, d_model, vocab, tied=True, residual=False, fused=False):
        super().__init__()
        self.cell, self.residual, self.tied = cell, residual, tied
        self.wte = nn.Embedding(vocab, d_model)
        nn.init.normal_(self.wte.weight, std=0.02)
        # fused: one multi-layer module (cuDNN-style; PyTorch's fastest path) when not residual.
        self.fused = fused and not residual
        if self.fused:
            self.stack = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](d_model, d_model, n_layer)
        else:
            self.rnn = nn.ModuleList(CELLS[cell](d_model) for _ in range(n_layer))
        if not tied:
            self.lm_head = nn.Linear(d_model, vocab, bias=False)
            nn.init.normal_(self.lm_head.weight, std=0.02)

    def forward(self, tokens, targets=None, state=None):
        """tokens [T, B] (time-major); returns logits [T, B, V], the mean loss over targets >= 0, and
        the final states (per layer h, or (h, c) for the LSTM)."""
        x = self.wte(tokens)
        finals = []
        if self.fused:
            x, final = self.stack(x, state)
            finals.append(final)
        else:
            for i, layer in enumerate(self.rnn):
                y, final = layer(x, None if state is None else state[i])
                finals.append(final)
                x = x + y if self.residual else y
        w = self.wte.weight if self.tied else self.lm_head.weight
        logits = x @ w.t()
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long(),
                                   ignore_index=-1)
        return logits, loss, finals


PRESETS = {  # name: (arch, n_layer, d_model, vocab), as core/model/recurrent_config.cpp
    "rnn-tiny": ("rnn", 24, 256, 8192), "lstm-tiny": ("lstm", 6, 256, 8192), "gru-tiny": ("gru", 8, 256, 8192),
    "rnn-small": ("rnn", 72, 768, 50257), "lstm-small": ("lstm", 18, 768, 50257),
    "gru-small": ("gru", 24, 768, 50257)}


def main():
    """Train-step throughput on random tokens with kervan bench train's options and JSON fields."""
    import resource
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arch", default="lstm", choices=sorted(CELLS))
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)  # accepted for the shared command line; unused
    ap.add_argument("--d-model", type=int)
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument("--fused", type=int, choices=(0, 1), default=1,
                    help="1: one multi-layer nn module (PyTorch's fastest CPU path; the default)")
    a = ap.parse_args()
    arch, L, C, V = PRESETS[a.preset] if a.preset else (a.arch, a.layers, a.d_model, a.vocab)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = RecurrentLM(arch, L, C, V, fused=bool(a.fused))
    # Same update as kervan: global-norm clip, then AdamW (decay on the weight matrices alike).
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, foreach=False)
    times = []
    for step in range(a.warmup_steps + a.steps):
        tokens = torch.randint(0, V, (a.seq + 1, a.batch))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, loss, _ = model(tokens[:-1], tokens[1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step >= a.warmup_steps:
            times.append(time.perf_counter() - t0)
    total = sum(times)
    print(json.dumps({"impl": "pytorch", "family": arch, "fused": a.fused, "threads": a.threads,
                      "batch": a.batch, "seq": a.seq, "tokens_per_s": a.batch * a.seq * a.steps / total,
                      "ms_per_step": 1e3 * total / a.steps,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
