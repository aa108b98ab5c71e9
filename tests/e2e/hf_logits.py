#!/usr/bin/python3
"""Loads a Hugging Face GPT-2 folder written by `kervan ckpt export --format hf` into the PyTorch
GPT-2 of bench/torch_gpt.py and checks its logits against kervan's.

    hf_logits.py FOLDER TOKENS LOGITS B T

TOKENS: int32 [B, T]; LOGITS: float32 [B, T, vocab_size], both raw little-endian. Exits 0 when
the largest difference is within 1e-4 of the largest logit magnitude (fp32 on both sides,
different summation orders), 1 otherwise, printing the error either way. Needs numpy and torch.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import torch_gpt  # noqa: E402


def read_safetensors(path):
    """A small reader: F32 tensors only (what kervan exports)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{name}: {info['dtype']}"
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])
    return out


def main():
    folder, tokens_path, logits_path, B, T = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["activation_function"] == "gelu_new" and cfg.get("tie_word_embeddings", True)
    model = torch_gpt.GPT(cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"])
    weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    state = {}
    for name, a in weights.items():
        name = name.removeprefix("transformer.")
        if name in ("wte.weight", "wpe.weight"):
            name = name[:3]
        elif a.ndim == 2:  # Conv1D [in, out] -> Linear [out, in]
            a = a.T
        state[name] = torch.from_numpy(np.array(a))  # a writable copy
    model.load_state_dict(state, strict=True)
    torch_gpt.set_threads(1)
    tokens = torch.from_numpy(np.fromfile(tokens_path, dtype="<i4").reshape(B, T))
    want = np.fromfile(logits_path, dtype="<f4").reshape(B, T, cfg["vocab_size"])
    with torch.no_grad():
        got, _ = model(tokens)
    err = float(np.abs(got.numpy() - want).max()) / float(np.abs(want).max())
    print(f"PyTorch logits of the exported folder vs kervan's: max difference {err:.2e} of the largest logit")
    sys.exit(0 if err <= 1e-4 else 1)


if __name__ == "__main__":
    main()
