#!/usr/bin/python3
"""GPT-2 in PyTorch eager: the reference model for kervan's test fixtures and its speed peer.

As a script it benchmarks training steps on random tokens and prints one JSON line last:
  /usr/bin/python3 bench/torch_gpt.py (--preset P | --layers L --heads H --d-model D --vocab V)
      --batch B --seq T --threads N --steps S [--warmup-steps W]
"""
import argparse
import ctypes
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# name: (n_layer, n_head, d_model, vocab_size, max_seq_len); same names as the C++ presets.
PRESETS = {
    "gpt2-tiny": (4, 4, 256, 8192, 256),
    "gpt2-small": (12, 12, 768, 50257, 1024),
    "gpt2-medium": (24, 16, 1024, 50257, 1024),
    "gpt2-large": (36, 20, 1280, 50257, 1024),
    "gpt2-xl": (48, 25, 1600, 50257, 1024),
}


class Attention(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(d, 3 * d)  # x -> [q | k | v]
        self.c_proj = nn.Linear(d, d)

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        # head h owns columns [h*hs, (h+1)*hs) of q, k and v -> [B, nh, T, hs]
        q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))
        # att = softmax(q k^T / sqrt(hs)) with keys after the query masked out
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        # gelu(u) ~= 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3)))
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = Attention(d, n_head)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.mlp = MLP(d)

    def forward(self, x):  # pre-LN residual block
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, n_layer, n_head, d_model, vocab_size, max_seq_len):
        super().__init__()
        assert d_model % n_head == 0
        self.wte = nn.Parameter(torch.empty(vocab_size, d_model))
        self.wpe = nn.Parameter(torch.empty(max_seq_len, d_model))
        self.h = nn.ModuleList(Block(d_model, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model, eps=1e-5)
        self.reset_parameters(n_layer)

    @torch.no_grad()
    def reset_parameters(self, n_layer):
        # N(0, 0.02) for embeddings and Linear weights; residual projections get
        # std 0.02/sqrt(2 n_layer) so the residual stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if "ln_" in name:
                p.fill_(1.0 if name.endswith(".weight") else 0.0)
            elif name.endswith("c_proj.weight"):
                p.normal_(0.0, 0.02 / math.sqrt(2 * n_layer))
            elif name in ("wte", "wpe") or name.endswith(".weight"):
                p.normal_(0.0, 0.02)
            else:  # Linear biases
                p.zero_()

    def forward(self, idx, targets=None):
        B, T = idx.shape
        x = self.wte[idx.long()] + self.wpe[:T]  # x[b,t] = wte[idx[b,t]] + wpe[t]
        for block in self.h:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte)  # LM head tied to wte: x @ wte^T
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(-1).long())
        return logits, loss


def param_groups(model, weight_decay):
    """Decay wte and the Linear weights; not biases, LayerNorm params or wpe."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        is_linear_w = name.endswith(".weight") and "ln_" not in name
        (decay if name == "wte" or is_linear_w else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model, lr, weight_decay, eps=1e-8, foreach=None):
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.95),
                             eps=eps, foreach=foreach)


def lr_at(step, max_lr, min_lr, warmup, total):
    """Linear warmup to max_lr, then cosine decay to min_lr at `total`, then constant."""
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    progress = (step - warmup) / (total - warmup)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def set_threads(n):
    """Size both of torch's CPU thread pools. Debian's torch does its GEMMs in OpenBLAS (the
    pthreads build), whose own pool defaults to every CPU and ignores torch.set_num_threads."""
    torch.set_num_threads(n)
    try:
        ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(n)
    except (OSError, AttributeError):  # some other BLAS: torch's setting is all there is
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--d-model", type=int)
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument("--foreach", type=int, choices=(0, 1), default=0,
                    help="AdamW foreach implementation (default 0: faster here)")
    a = ap.parse_args()
    if a.preset:
        L, H, D, V, max_t = PRESETS[a.preset]
    elif None not in (a.layers, a.heads, a.d_model, a.vocab):
        L, H, D, V, max_t = a.layers, a.heads, a.d_model, a.vocab, a.seq
    else:
        ap.error("give --preset or all of --layers --heads --d-model --vocab")
    if min(a.batch, a.seq, a.threads, a.steps) <= 0 or a.warmup_steps < 0:
        ap.error("--batch, --seq, --threads and --steps must be positive")

    set_threads(a.threads)  # torch's own default here is 1 thread, OpenBLAS's is 2
    torch.manual_seed(1337)
    model = GPT(L, H, D, V, max(max_t, a.seq))
    # AdamW: foreach=False (the per-tensor loop) measured faster than foreach=True on the
    # 2-core dev machine for gpt2-small and gpt2-tiny, so the peer gets it by default.
    opt = make_optimizer(model, lr=1e-4, weight_decay=0.1, foreach=bool(a.foreach))
    gen = torch.Generator().manual_seed(1337)

    total = 0.0
    for step in range(a.warmup_steps + a.steps):
        # fresh random tokens each step, drawn outside the timed region
        x = torch.randint(0, V, (a.batch, a.seq), generator=gen)
        y = torch.randint(0, V, (a.batch, a.seq), generator=gen)
        t0 = time.perf_counter()
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if step >= a.warmup_steps:
            total += dt

    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({
        "impl": "torch",
        "tokens_per_s": a.batch * a.seq * a.steps / total,
        "ms_per_step": 1e3 * total / a.steps,
        "params": n_params,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": a.threads,
        "batch": a.batch,
        "seq": a.seq,
    }))


if __name__ == "__main__":
    main()
