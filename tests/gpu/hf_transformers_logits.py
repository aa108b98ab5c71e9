#!/usr/bin/env python3
"""Loads a Hugging Face GPT-2 folder written by kervan (`kervan ckpt export --format hf`) with
transformers' GPT2LMHeadModel, on the GPU where there is one, and checks its logits against
kervan's.

    hf_transformers_logits.py FOLDER TOKENS LOGITS B T

TOKENS: int32 [B, T]; LOGITS: float32 [B, T, vocab_size], both raw little-endian. fp32 on both
sides with TF32 off; the kernels and summation orders differ, so the bound is 1e-4 of the largest
logit magnitude (tests/e2e/hf_logits.py's, against bench/torch_gpt.py on the CPU). Exits 0 within
it, 1 otherwise, printing the error either way. Run by tests/gpu/test_checkpoint.cpp.
"""
import sys

import numpy as np
import torch
from transformers import GPT2LMHeadModel


def main():
    folder, tokens_path, logits_path = sys.argv[1:4]
    B, T = int(sys.argv[4]), int(sys.argv[5])
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = GPT2LMHeadModel.from_pretrained(folder).float().to(device).eval()
    V = model.config.vocab_size
    tokens = torch.from_numpy(np.fromfile(tokens_path, dtype="<i4").reshape(B, T)).long().to(device)
    want = np.fromfile(logits_path, dtype="<f4").reshape(B, T, V)
    with torch.no_grad():
        got = model(tokens).logits.float().cpu().numpy()
    err = float(np.abs(got - want).max()) / float(np.abs(want).max())
    print(f"transformers {__import__('transformers').__version__} GPT2LMHeadModel ({device}) logits of the "
          f"exported folder vs kervan's: max difference {err:.2e} of the largest logit")
    sys.exit(0 if err <= 1e-4 else 1)


if __name__ == "__main__":
    main()
