#!/usr/bin/env python3
"""The GPU speed peer of `kervan bench train --device cuda`, and the card's measured ceilings.

nanoGPT's recipe on bench/torch_gpt.py's model: bf16 autocast, fused scaled-dot-product
(flash) attention, fused AdamW, torch.compile. Prints one JSON line per measurement:
  --gemm N          a bf16 N x N x N matrix product through cuBLAS (torch.matmul), TFLOP/s
  --preset P ...    training steps on random tokens: tokens/s, ms/step, peak memory
It is run by scripts/gpu-check.sh on the lent GPU machine (its python3 has torch there).
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_gpt  # noqa: E402  (the model, its presets and AdamW groups)


def sdpa_forward(self, x):
    """bench/torch_gpt.py's Attention.forward with PyTorch's fused causal attention."""
    B, T, C = x.shape
    hs = C // self.n_head
    q, k, v = self.c_attn(x).split(C, dim=2)
    q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


def time_ms(fn, warmup, reps):
    """Median of `reps` runs of fn, timed with CUDA events after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def bench_gemm(n):
    # Random inputs (zeros run faster than real data: METHOD.md); three input sets rotated so that
    # the L2 cache does not serve repeats.
    sets = [(torch.randn(n, n, device="cuda", dtype=torch.bfloat16),
             torch.randn(n, n, device="cuda", dtype=torch.bfloat16)) for _ in range(3)]
    out = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
    i = [0]

    def run():
        a, b = sets[i[0] % 3]
        i[0] += 1
        torch.matmul(a, b, out=out)

    ms = time_ms(run, 3, 10)
    return {"bench": "gemm_bf16", "n": n, "tflops": 2 * n**3 / ms / 1e9,
            "device": torch.cuda.get_device_name()}


def bench_train(preset, batch, seq, steps, warmup, compile_model):
    L, H, D, V, max_t = torch_gpt.PRESETS[preset]
    torch_gpt.Attention.forward = sdpa_forward
    torch.manual_seed(1337)
    torch.backends.cuda.matmul.allow_tf32 = True
    model = torch_gpt.GPT(L, H, D, V, max(max_t, seq)).cuda()
    opt = torch.optim.AdamW(torch_gpt.param_groups(model, 0.1), lr=1e-4, betas=(0.9, 0.95), fused=True)
    step_model = torch.compile(model) if compile_model else model
    gen = torch.Generator(device="cuda").manual_seed(1337)

    def step():
        x = torch.randint(0, V, (batch, seq), device="cuda", generator=gen)
        y = torch.randint(0, V, (batch, seq), device="cuda", generator=gen)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            _, loss = step_model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    torch.cuda.reset_peak_memory_stats()
    ms = time_ms(step, warmup, steps)
    n_params = sum(p.numel() for p in model.parameters())
    return {"impl": "torch.compile" if compile_model else "torch", "preset": preset, "batch": batch,
            "seq": seq, "tokens_per_s": batch * seq / ms * 1e3, "ms_per_step": ms,
            "flops_per_token": 6 * n_params, "peak_device_mb": torch.cuda.max_memory_allocated() / 1e6,
            "device": torch.cuda.get_device_name()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--gemm", type=int)
    ap.add_argument("--preset", choices=sorted(torch_gpt.PRESETS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup-steps", type=int, default=3)
    ap.add_argument("--no-compile", action="store_true")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: torch.cuda.is_available() is False")
    if a.gemm:
        print(json.dumps(bench_gemm(a.gemm)), flush=True)
    if a.preset:
        print(json.dumps(bench_train(a.preset, a.batch, a.seq, a.steps, a.warmup_steps, not a.no_compile)),
              flush=True)
    if not a.gemm and not a.preset:
        ap.error("give --gemm N and/or --preset P")


if __name__ == "__main__":
    main()
