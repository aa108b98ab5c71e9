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


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arch", default="lstm", choices=sorted(CELLS))
    ap.add_argument("--n-layer", type=int, default=6)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fused", action="store_true", help="one multi-layer nn module (PyTorch's fast path)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = RecurrentLM(a.arch, a.n_layer, a.d_model, a.vocab, fused=a.fused)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=False)
    tokens = torch.randint(0, a.vocab, (a.seq + 1, a.batch))
    times = []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, loss, _ = model(tokens[:-1], tokens[1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    print(json.dumps({"impl": "pytorch", "arch": a.arch, "fused": a.fused, "threads": a.threads,
                      "batch": a.batch, "seq": a.seq, "tokens_per_s": a.batch * a.seq / median,
                      "ms_per_step": median * 1e3, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
