#!/usr/bin/python3
"""BERT in PyTorch eager: the reference model for kervan's BERT fixtures and its speed peer.

The math is Hugging Face's BertForMaskedLM (transformers/models/bert/modeling_bert.py): word +
position + token-type embeddings and LayerNorm (eps 1e-12); post-LN blocks with erf GELU;
padding keys masked out of attention; the MLM head's transform (dense, GELU, LayerNorm) and a
decoder tied to the word embedding with its own bias; cross-entropy over positions whose label is
not -100. Parameter names are kervan's: q, k and v are one fused c_attn ([query; key; value] of
Hugging Face's layer), attention.output.dense is c_proj, intermediate/output are mlp.c_fc/c_proj.

As a script it benchmarks MLM training steps on random tokens (15% of positions predicted) and
prints one JSON line last:
  /usr/bin/python3 bench/torch_bert.py --preset bert-base --batch B --seq T --threads N --steps S
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_gpt import set_threads

# name: (n_layer, n_head, d_model, vocab_size, max_seq_len); same as kervan's presets.
PRESETS = {
    "bert-tiny": (2, 2, 128, 30522, 512),
    "bert-mini": (4, 4, 256, 30522, 512),
    "bert-base": (12, 12, 768, 30522, 512),
    "bert-large": (24, 16, 1024, 30522, 512),
}
EPS = 1e-12


class Attention(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)

    def forward(self, x, key_mask):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in self.c_attn(x).split(C, dim=2))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        if key_mask is not None:  # [B, T] True for real tokens: padding keys get no probability
            att = att.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))  # erf GELU


class Block(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.attn = Attention(d, n_head)
        self.ln_1 = nn.LayerNorm(d, eps=EPS)
        self.mlp = Mlp(d)
        self.ln_2 = nn.LayerNorm(d, eps=EPS)

    def forward(self, x, key_mask):  # post-LN
        x = self.ln_1(x + self.attn(x, key_mask))
        return self.ln_2(x + self.mlp(x))


class MlmHead(nn.Module):
    def __init__(self, d, vocab):
        super().__init__()
        self.dense = nn.Linear(d, d)
        self.ln = nn.LayerNorm(d, eps=EPS)
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, h, wte):
        return F.linear(self.ln(F.gelu(self.dense(h))), wte, self.bias)


class Bert(nn.Module):
    def __init__(self, n_layer, n_head, d_model, vocab_size, max_seq_len, type_vocab=2):
        super().__init__()
        self.wte = nn.Parameter(torch.empty(vocab_size, d_model))
        self.wpe = nn.Parameter(torch.empty(max_seq_len, d_model))
        self.wtt = nn.Parameter(torch.empty(type_vocab, d_model))
        self.emb_ln = nn.LayerNorm(d_model, eps=EPS)
        self.h = nn.ModuleList(Block(d_model, n_head) for _ in range(n_layer))
        self.mlm = MlmHead(d_model, vocab_size)
        with torch.no_grad():  # BERT's: N(0, 0.02) weights, zero biases, LayerNorms 1 and 0
            for name, p in self.named_parameters():
                if "ln" in name:
                    p.fill_(1.0 if name.endswith("weight") else 0.0)
                elif name.endswith("bias"):
                    p.zero_()
                else:
                    p.normal_(0.0, 0.02)

    def forward(self, tokens, types, lengths, targets, gather=False):
        """Mean cross-entropy over positions with targets >= 0. gather: run the head on those
        positions only (what kervan does; the loss is the same)."""
        B, T = tokens.shape
        key_mask = torch.arange(T)[None, :] < lengths[:, None] if lengths is not None else None
        x = self.wte[tokens.long()] + self.wpe[:T] + self.wtt[types.long()]
        x = self.emb_ln(x)
        for block in self.h:
            x = block(x, key_mask)
        x, targets = x.view(B * T, -1), targets.reshape(-1).long()
        if gather:
            keep = targets >= 0
            x, targets = x[keep], targets[keep]
        logits = self.mlm(x, self.wte)
        return logits, F.cross_entropy(logits, targets, ignore_index=-1)


def decay_groups(model, weight_decay):
    """Decay the word embedding and Linear weights (kervan's rule); not biases, norms, wpe, wtt."""
    decay, rest = [], []
    for name, p in model.named_parameters():
        (decay if name == "wte" or (name.endswith(".weight") and "ln" not in name) else rest).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup-steps", type=int, default=2)
    a = ap.parse_args()
    L, H, D, V, max_t = PRESETS[a.preset]
    set_threads(a.threads)
    torch.manual_seed(1337)
    model = Bert(L, H, D, V, max(max_t, a.seq))
    opt = torch.optim.AdamW(decay_groups(model, 0.1), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, foreach=False)
    gen = torch.Generator().manual_seed(1337)
    total, n_pred = 0.0, 0
    for step in range(a.warmup_steps + a.steps):
        x = torch.randint(0, V, (a.batch, a.seq), generator=gen)
        types = torch.zeros(a.batch, a.seq, dtype=torch.long)
        masked = torch.rand(a.batch, a.seq, generator=gen) < 0.15
        y = torch.where(masked, torch.randint(0, V, (a.batch, a.seq), generator=gen), torch.full_like(x, -1))
        t0 = time.perf_counter()
        _, loss = model(x, types, None, y, gather=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= a.warmup_steps:
            total += time.perf_counter() - t0
            n_pred += int(masked.sum())
    print(json.dumps({
        "impl": "torch", "family": "bert",
        "tokens_per_s": a.batch * a.seq * a.steps / total,
        "ms_per_step": 1e3 * total / a.steps,
        "predicted_per_step": n_pred / a.steps,
        "params": sum(p.numel() for p in model.parameters()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": a.threads, "batch": a.batch, "seq": a.seq,
    }))


if __name__ == "__main__":
    main()
