#!/usr/bin/python3
"""The recurrent study (issue 14), as a bench script over `kervan train`: GPT, LSTM, GRU and RNN
models of about equal parameter count train on the same corpus for the same token budget (same
seed, batch, sequence length, schedule and threads), and the script reports per architecture

  (a) tokens/s (median over the steps) and wall time of the run,
  (b) validation loss after the equal token budget, and after equal wall time (the last
      validation each run had reached by the time the fastest run finished),
  (e) parameter counts, and the LSTM and GRU layer parameters at equal width,

as one JSON file. (c) hidden-state gradient norms and (d) the long-dependency probe are not
implemented yet (docs/recurrent-study.md). Every number comes from the runs' metrics files.

  bench/recurrent_study.py --kervan build/kervan --corpus DIR --out study.json [--size tiny|test]

DIR is a kervan corpus with a val split (kervan prepare --val-documents N). --size test is the
seconds-long run ctest makes (tests/e2e/recurrent_study.sh); --check FILE verifies that a written
JSON file has every field, finite."""
import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile

# Shapes of about equal parameter count at width C: GPT's 2 blocks of 12 C^2 equal 3 LSTM layers of
# 8 C^2, 4 GRU layers of 6 C^2, 12 RNN layers of 2 C^2.
SIZES = {
    "tiny": {"d_model": 64, "n_head": 4, "steps": 300, "micro_batch": 16, "seq_len": 64, "eval_every": 50,
             "eval_batches": 4, "layers": {"gpt": 2, "lstm": 3, "gru": 4, "rnn": 12}},
    "test": {"d_model": 16, "n_head": 2, "steps": 4, "micro_batch": 2, "seq_len": 16, "eval_every": 2,
             "eval_batches": 1, "layers": {"gpt": 2, "lstm": 3, "gru": 4, "rnn": 12}},
}
ARCHS = ("gpt", "lstm", "gru", "rnn")


def config(arch, size, corpus, vocab, threads, metrics):
    s = SIZES[size]
    head = f"n_head = {s['n_head']}\n" if arch == "gpt" else ""
    return f"""[model]
arch = "{arch}"
n_layer = {s['layers'][arch]}
{head}d_model = {s['d_model']}
vocab_size = {vocab}
[data]
path = "{corpus}"
[train]
steps = {s['steps']}
micro_batch = {s['micro_batch']}
seq_len = {s['seq_len']}
lr = 3e-3
warmup_steps = {max(1, s['steps'] // 20)}
threads = {threads}
eval_every = {s['eval_every']}
eval_batches = {s['eval_batches']}
seed = 1
[log]
metrics_file = "{metrics}"
"""


def run(kervan, arch, size, corpus, vocab, threads, work):
    metrics = os.path.join(work, arch + ".jsonl")
    path = os.path.join(work, arch + ".toml")
    with open(path, "w") as f:
        f.write(config(arch, size, corpus, vocab, threads, metrics))
    p = subprocess.run([kervan, "train", "--config", path], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"recurrent_study: {arch} failed (exit {p.returncode}):\n{p.stderr[-2000:]}")
    s, C, L = SIZES[size], SIZES[size]["d_model"], SIZES[size]["layers"][arch]
    gates = {"lstm": 4, "gru": 3, "rnn": 1}
    params = vocab * C + (s["seq_len"] * C + L * (12 * C * C + 13 * C) + 2 * C if arch == "gpt" else
                          L * gates[arch] * C * (2 * C + 2))
    m = re.search(r"([0-9.]+)M parameters", p.stderr + p.stdout)
    if not m or abs(float(m.group(1)) - params / 1e6) > 0.006:
        sys.exit(f"recurrent_study: {arch}: kervan logs {m.group(1) if m else '?'}M parameters, the script "
                 f"counts {params}")
    steps = [json.loads(line) for line in open(metrics)]
    wall, evals = 0.0, []
    for st in steps:
        wall += st["ms_per_step"] / 1e3
        if "val_loss" in st:
            evals.append({"step": st["step"], "tokens": (st["step"] + 1) * SIZES[size]["micro_batch"] *
                          SIZES[size]["seq_len"], "wall_s": wall, "val_loss": st["val_loss"]})
    return {"params": params, "n_layer": SIZES[size]["layers"][arch],
            "tokens_per_s": statistics.median(st["tokens_per_s"] for st in steps),
            "wall_s": wall, "train_loss_first": steps[0]["loss"], "train_loss_last": steps[-1]["loss"],
            "val_loss_equal_tokens": evals[-1]["val_loss"], "validations": evals}


def check(path):
    """Every field present and finite; exit 1 naming what is not."""
    j = json.load(open(path))
    bad = []

    def walk(v, where):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, f"{where}.{k}")
        elif isinstance(v, list):
            if not v:
                bad.append(f"{where}: empty")
            for i, x in enumerate(v):
                walk(x, f"{where}[{i}]")
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isfinite(v):
            bad.append(f"{where}: {v}")
    walk(j, "study")
    for arch in ARCHS:
        for field in ("params", "tokens_per_s", "wall_s", "val_loss_equal_tokens", "val_loss_equal_wall",
                      "validations"):
            if field not in j.get("archs", {}).get(arch, {}):
                bad.append(f"archs.{arch}.{field}: missing")
    for field in ("lstm_layer_params", "gru_layer_params", "gru_over_lstm"):
        if field not in j.get("equal_width", {}):
            bad.append(f"equal_width.{field}: missing")
    if bad:
        sys.exit("recurrent_study --check: " + "; ".join(bad))
    print(f"{path}: every field present and finite")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kervan", default="build/kervan")
    ap.add_argument("--corpus")
    ap.add_argument("--vocab", type=int, default=257, help="the corpus tokenizer's vocabulary (bytes: 257)")
    ap.add_argument("--out")
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, help="override the size's optimizer steps (eval_every: steps / 4)")
    ap.add_argument("--check", metavar="FILE")
    a = ap.parse_args()
    if a.steps:
        SIZES[a.size].update(steps=a.steps, eval_every=max(1, a.steps // 4))
    if a.check:
        return check(a.check)
    if not a.corpus or not a.out:
        ap.error("--corpus and --out are required (or --check FILE)")
    if not os.path.isfile(os.path.join(a.corpus, "manifest.json")):
        print(f"recurrent_study: --corpus {a.corpus}: not a kervan corpus folder (no manifest.json)",
              file=sys.stderr)
        sys.exit(2)
    with tempfile.TemporaryDirectory() as work:
        archs = {arch: run(a.kervan, arch, a.size, a.corpus, a.vocab, a.threads, work) for arch in ARCHS}
    # (b) equal wall time: the last validation every run had reached when the fastest run ended.
    budget = min(r["wall_s"] for r in archs.values())
    for r in archs.values():
        reached = [e for e in r["validations"] if e["wall_s"] <= budget * 1.0001]
        r["val_loss_equal_wall"] = reached[-1]["val_loss"] if reached else r["validations"][0]["val_loss"]
    C = SIZES[a.size]["d_model"]
    lstm_layer, gru_layer = 4 * C * (2 * C) + 8 * C, 3 * C * (2 * C) + 6 * C
    out = {"size": a.size, "d_model": C, "threads": a.threads, "corpus": os.path.abspath(a.corpus),
           "tokens": SIZES[a.size]["steps"] * SIZES[a.size]["micro_batch"] * SIZES[a.size]["seq_len"],
           "equal_wall_s": budget, "archs": archs,
           "equal_width": {"d_model": C, "lstm_layer_params": lstm_layer, "gru_layer_params": gru_layer,
                           "gru_over_lstm": gru_layer / lstm_layer}}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    for arch, r in archs.items():
        print(f"{arch:5} {r['params'] / 1e6:6.3f}M params  {r['tokens_per_s']:9.0f} tok/s  {r['wall_s']:7.1f} s  "
              f"val loss {r['val_loss_equal_tokens']:.4f} (equal tokens)  {r['val_loss_equal_wall']:.4f} "
              f"(equal wall {budget:.1f} s)")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
