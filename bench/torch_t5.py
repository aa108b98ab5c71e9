#!/usr/bin/python3
"""T5 in PyTorch eager: the reference model for kervan's T5 fixtures and its speed peer.

The math is Hugging Face's T5ForConditionalGeneration (transformers/models/t5/modeling_t5.py):
a shared embedding; pre-norm blocks with T5's RMS norm (no bias, eps 1e-6); attention without
biases or score scaling, plus a relative position bias computed once per stack
(_relative_position_bucket: bidirectional in the encoder, causal in the decoder) and encoder
padding masked out; the decoder's cross-attention; a ReLU (v1.0) or gated tanh-GELU (v1.1)
feed-forward; the LM head tied to the shared embedding with the d_model^-0.5 rescale (v1.0) or its
own (v1.1); cross-entropy over targets that are not -100 (here: >= 0). Parameter names are
kervan's: q|k|v fused as attn.c_attn ([q; k; v]), o as attn.c_proj; the cross-attention's k|v as
cross.kv ([k; v]); wi (or [wi_0; wi_1]) as mlp.c_fc and wo as mlp.c_proj; the bias tables as
enc.rel / dec.rel ([buckets, heads], Hugging Face's relative_attention_bias.weight).

As a script it benchmarks span-corruption training steps on random tokens (encoder length --seq,
decoder length the matching target length: 114 for 512, as Hugging Face's T5 pretraining script
computes it) and prints one JSON line last:
  /usr/bin/python3 bench/torch_t5.py --preset t5-small --batch B --seq T --threads N --steps S
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

# name: (n_layer per stack, n_head, d_model, vocab_size, d_ff); same as kervan's presets.
PRESETS = {
    "t5-tiny": (4, 4, 256, 32128, 1024),
    "t5-small": (6, 8, 512, 32128, 2048),
    "t5-base": (12, 12, 768, 32128, 3072),
}


def relative_position_bucket(relative_position, bidirectional, num_buckets=32, max_distance=128):
    """Hugging Face's T5Attention._relative_position_bucket, verbatim in substance."""
    relative_buckets = 0
    if bidirectional:
        num_buckets //= 2
        relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    relative_position_if_large = max_exact + (
        torch.log(relative_position.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    relative_position_if_large = torch.min(relative_position_if_large,
                                           torch.full_like(relative_position_if_large, num_buckets - 1))
    relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
    return relative_buckets


def span_corruption_lengths(inputs_length, noise_density=0.15, mean_span=3.0):
    """(raw tokens, target length) whose corruption gives exactly inputs_length inputs (Hugging
    Face's compute_input_and_target_lengths)."""
    def lengths(tokens):
        noise = int(round(tokens * noise_density))
        spans = int(round(noise / mean_span))
        return tokens - noise + spans + 1, noise + spans + 1
    tokens = inputs_length
    while lengths(tokens + 1)[0] <= inputs_length:
        tokens += 1
    return tokens, lengths(tokens)[1]


class RmsNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def attend(q, k, v, n_head, bias):
    """softmax(q k^T + bias) v per head, no scaling; bias [1 or B, NH, Tq, Tk] (with -inf masks)."""
    B, Tq, I = q.shape
    Tk, hs = k.shape[1], I // n_head
    q, k, v = (t.view(B, -1, n_head, hs).transpose(1, 2) for t in (q, k, v))
    att = F.softmax(q @ k.transpose(-2, -1) + bias, dim=-1)
    return (att @ v).transpose(1, 2).contiguous().view(B, Tq, I)


class SelfAttention(nn.Module):
    def __init__(self, d, n_head, d_kv):
        super().__init__()
        self.n_head, self.inner = n_head, n_head * d_kv
        self.c_attn = nn.Linear(d, 3 * self.inner, bias=False)
        self.c_proj = nn.Linear(self.inner, d, bias=False)

    def forward(self, x, bias):
        q, k, v = self.c_attn(x).split(self.inner, dim=2)
        return self.c_proj(attend(q, k, v, self.n_head, bias))


class CrossAttention(nn.Module):
    def __init__(self, d, n_head, d_kv):
        super().__init__()
        self.n_head, self.inner = n_head, n_head * d_kv
        self.q = nn.Linear(d, self.inner, bias=False)
        self.kv = nn.Linear(d, 2 * self.inner, bias=False)
        self.o = nn.Linear(self.inner, d, bias=False)

    def forward(self, x, memory, mask_bias):
        k, v = self.kv(memory).split(self.inner, dim=2)
        return self.o(attend(self.q(x), k, v, self.n_head, mask_bias))


class FeedForward(nn.Module):
    def __init__(self, d, d_ff, gated):
        super().__init__()
        self.gated, self.d_ff = gated, d_ff
        self.c_fc = nn.Linear(d, (2 if gated else 1) * d_ff, bias=False)
        self.c_proj = nn.Linear(d_ff, d, bias=False)

    def forward(self, x):
        if self.gated:  # T5 v1.1: gelu_new(x wi_0) * (x wi_1)
            g, lin = self.c_fc(x).split(self.d_ff, dim=2)
            return self.c_proj(F.gelu(g, approximate="tanh") * lin)
        return self.c_proj(F.relu(self.c_fc(x)))


class EncoderBlock(nn.Module):
    def __init__(self, d, n_head, d_kv, d_ff, gated):
        super().__init__()
        self.ln_1, self.attn = RmsNorm(d), SelfAttention(d, n_head, d_kv)
        self.ln_2, self.mlp = RmsNorm(d), FeedForward(d, d_ff, gated)

    def forward(self, x, bias):
        x = x + self.attn(self.ln_1(x), bias)
        return x + self.mlp(self.ln_2(x))


class DecoderBlock(nn.Module):
    def __init__(self, d, n_head, d_kv, d_ff, gated):
        super().__init__()
        self.ln_1, self.attn = RmsNorm(d), SelfAttention(d, n_head, d_kv)
        self.ln_2, self.cross = RmsNorm(d), CrossAttention(d, n_head, d_kv)
        self.ln_3, self.mlp = RmsNorm(d), FeedForward(d, d_ff, gated)

    def forward(self, y, bias, memory, memory_bias):
        y = y + self.attn(self.ln_1(y), bias)
        y = y + self.cross(self.ln_2(y), memory, memory_bias)
        return y + self.mlp(self.ln_3(y))


class Stack(nn.Module):
    def __init__(self, block, n_layer, d, n_head, bidirectional, num_buckets, max_distance):
        super().__init__()
        self.rel = nn.Parameter(torch.empty(num_buckets, n_head))
        self.blocks = nn.ModuleList(block() for _ in range(n_layer))
        self.ln_f = RmsNorm(d)
        self.bidirectional, self.num_buckets, self.max_distance = bidirectional, num_buckets, max_distance

    def position_bias(self, T):
        pos = torch.arange(T)
        buckets = relative_position_bucket(pos[None, :] - pos[:, None], self.bidirectional, self.num_buckets,
                                           self.max_distance)
        return self.rel[buckets].permute(2, 0, 1).unsqueeze(0)  # [1, NH, T, T]


class T5(nn.Module):
    def __init__(self, n_layer, n_head, d_model, vocab_size, d_ff, d_kv=None, gated=False, num_buckets=32,
                 max_distance=128):
        super().__init__()
        d_kv = d_kv or d_model // n_head
        self.d_model, self.tied = d_model, not gated
        self.wte = nn.Parameter(torch.empty(vocab_size, d_model))
        self.enc = Stack(lambda: EncoderBlock(d_model, n_head, d_kv, d_ff, gated), n_layer, d_model, n_head, True,
                         num_buckets, max_distance)
        self.dec = Stack(lambda: DecoderBlock(d_model, n_head, d_kv, d_ff, gated), n_layer, d_model, n_head, False,
                         num_buckets, max_distance)
        if not self.tied:
            self.lm_head = nn.Parameter(torch.empty(vocab_size, d_model))
        with torch.no_grad():  # Hugging Face's T5 initialisation, factor 1
            inner = n_head * d_kv
            for name, p in self.named_parameters():
                if name in ("wte", "lm_head"):
                    p.normal_(0.0, 1.0)
                elif name.endswith(".rel"):
                    p.normal_(0.0, d_model ** -0.5)
                elif name.endswith("attn.c_attn.weight"):
                    p[:inner].normal_(0.0, (d_model * d_kv) ** -0.5)
                    p[inner:].normal_(0.0, d_model ** -0.5)
                elif name.endswith("cross.q.weight"):
                    p.normal_(0.0, (d_model * d_kv) ** -0.5)
                elif name.endswith("cross.kv.weight") or name.endswith("mlp.c_fc.weight"):
                    p.normal_(0.0, d_model ** -0.5)
                elif name.endswith("c_proj.weight") and "attn" in name or name.endswith("cross.o.weight"):
                    p.normal_(0.0, inner ** -0.5)
                elif name.endswith("mlp.c_proj.weight"):
                    p.normal_(0.0, d_ff ** -0.5)
                else:  # RMS norm weights
                    p.fill_(1.0)

    def forward(self, tokens, lengths, decoder_tokens, targets=None):
        B, Te = tokens.shape
        Td = decoder_tokens.shape[1]
        pad = torch.zeros(B, 1, 1, Te)
        if lengths is not None:  # encoder padding: -inf for keys past each length
            pad = pad.masked_fill(torch.arange(Te)[None, None, None, :] >= lengths[:, None, None, None],
                                  float("-inf"))
        x = self.wte[tokens.long()]
        enc_bias = self.enc.position_bias(Te) + pad
        for block in self.enc.blocks:
            x = block(x, enc_bias)
        memory = self.enc.ln_f(x)
        causal = torch.ones(Td, Td, dtype=torch.bool).triu(1)
        dec_bias = self.dec.position_bias(Td).masked_fill(causal, float("-inf"))
        y = self.wte[decoder_tokens.long()]
        for block in self.dec.blocks:
            y = block(y, dec_bias, memory, pad)
        y = self.dec.ln_f(y)
        logits = F.linear(y * self.d_model ** -0.5, self.wte) if self.tied else F.linear(y, self.lm_head)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(B * Td, -1), targets.reshape(-1).long(), ignore_index=-1)


def decay_groups(model, weight_decay):
    """Decay the embedding, LM head and Linear weights (kervan's rule); not norms or bias tables."""
    decay, rest = [], []
    for name, p in model.named_parameters():
        is_linear = name.endswith(".weight") and ".ln_" not in name
        (decay if name in ("wte", "lm_head") or is_linear else rest).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), required=True)
    ap.add_argument("--t5-ffn", choices=("relu", "gated-gelu"), default="relu")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup-steps", type=int, default=2)
    a = ap.parse_args()
    L, H, D, V, d_ff = PRESETS[a.preset]
    set_threads(a.threads)
    torch.manual_seed(1337)
    model = T5(L, H, D, V, d_ff, gated=a.t5_ffn == "gated-gelu")
    opt = torch.optim.AdamW(decay_groups(model, 0.1), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, foreach=False)
    gen = torch.Generator().manual_seed(1337)
    Td = span_corruption_lengths(a.seq)[1]
    total = 0.0
    for step in range(a.warmup_steps + a.steps):
        x = torch.randint(0, V, (a.batch, a.seq), generator=gen)
        dec = torch.randint(0, V, (a.batch, Td), generator=gen)
        y = torch.randint(0, V, (a.batch, Td), generator=gen)
        t0 = time.perf_counter()
        _, loss = model(x, None, dec, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= a.warmup_steps:
            total += time.perf_counter() - t0
    print(json.dumps({
        "impl": "torch", "family": "t5",
        "tokens_per_s": a.batch * a.seq * a.steps / total,
        "ms_per_step": 1e3 * total / a.steps,
        "decoder_seq": Td,
        "params": sum(p.numel() for p in model.parameters()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": a.threads, "batch": a.batch, "seq": a.seq,
    }))


if __name__ == "__main__":
    main()
