#!/usr/bin/python3
"""The recurrent study (issue 14; docs/recurrent-study.md), run by `kervan study recurrent --config
STUDY.toml`. GPT, LSTM, GRU and RNN models of about equal parameter count train through `kervan
train` on one corpus for one token budget (same seed, batch, sequence length, schedule, threads),
and the study reports per architecture

  (a) tokens/s (median over the steps) and wall time of the run,
  (b) validation loss after the equal token budget, and after equal wall time (the last
      validation each run had reached by the time the fastest run finished),
  (c) the norm of d(loss at the last position)/d(state at each position back from it), at
      initialisation and after training (`kervan study grad-norms`: the top recurrent layer's
      hidden state; GPT's residual stream entering its last block),
  (d) a long-dependency probe: a key letter, d random filler letters, '?', and the key again; per
      distance d a corpus is generated (deterministically, from the seed), every architecture
      trains on it (by default starting from its model of the previous distance: a curriculum),
      and `kervan study recall` scores the key after '?' on held-out documents: accuracy, and the
      cross-entropy and probability of the right key,
  (e) parameter counts, and the LSTM and GRU layer parameters at equal width,

into OUT/study.json, with plots OUT/loss.png (`kervan plot`), OUT/grad-norms.png and
OUT/probe.png (gnuplot) and each run's config and metrics under OUT/runs/. Every number comes from
kervan's own output. This is a driver over `kervan train` rather than C++ so that the study cannot
drift from the trainer it measures.

  bench/recurrent_study.py --kervan build/kervan --config STUDY.toml [--probe-only]
  bench/recurrent_study.py --check OUT/study.json      # every field present and finite (exit 1)

--probe-only runs (d) alone and writes OUT/probe.json and OUT/probe.png.

STUDY.toml has one [study] table (keys and defaults: STUDY_KEYS below) and an optional
[study.probe] table (PROBE_KEYS); study.corpus, a kervan corpus with a validation split (kervan
prepare --val-documents N), is required. A config mistake exits 2 naming the file and key."""
import argparse
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import tomllib

ARCHS = ("gpt", "lstm", "gru", "rnn")
# Defaults: the docs' size. At width C, GPT's 2 blocks of 12 C^2 are about 3 LSTM layers of 8 C^2,
# 4 GRU layers of 6 C^2 and 12 RNN layers of 2 C^2.
STUDY_KEYS = {
    "corpus": None, "out": "recurrent-study", "threads": 2, "seed": 1, "d_model": 64, "n_head": 4,
    "layers": {"gpt": 2, "lstm": 3, "gru": 4, "rnn": 12}, "residual": True, "steps": 40, "micro_batch": 16,
    "seq_len": 64,
    "lr": 3e-3, "eval_every": 10, "eval_batches": 4, "grad_batches": 4,
}
PROBE_KEYS = {
    "distances": [8, 32, 128, 512], "keys": 8, "fillers": 2, "train_documents": 4096, "val_documents": 64,
    "first_steps": 4096, "steps": 1024, "micro_batch": 8, "lr": 5e-3, "curriculum": True, "seeds": 3,
}
KEY_LETTERS, FILLER_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"


def refuse(path, message):
    print(f"kervan study recurrent: {path}: {message}", file=sys.stderr)
    sys.exit(2)


def typed(path, where, value, default):
    """`value` checked against the type of its default (exit 2 naming the key)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif default is None:
        ok = isinstance(value, str)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    elif isinstance(default, list):
        ok = isinstance(value, list) and value and all(isinstance(v, int) and v > 0 for v in value)
    else:
        ok = isinstance(value, str)
    if not ok:
        kind = {bool: "true or false", int: "a positive integer", float: "a positive number",
                list: "a list of positive integers"}
        refuse(path, f"{where} = {value!r}: expected {kind.get(type(default), 'a string')}")
    return value


def load_config(path):
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        refuse(path, "no such file")
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        refuse(path, f"not a readable TOML file ({e})")
    for top in raw:
        if top != "study":
            refuse(path, f"[{top}]: unknown table (a study config has [study] and [study.probe])")
    study = dict(raw.get("study", {}))
    probe_raw = study.pop("probe", {})
    s, p = {}, {}
    for table, keys, raw_table, out in (("study", STUDY_KEYS, study, s), ("study.probe", PROBE_KEYS, probe_raw, p)):
        if not isinstance(raw_table, dict):
            refuse(path, f"{table}: expected a table")
        for k in raw_table:
            if k not in keys:
                refuse(path, f"{table}.{k}: unknown key (known: {', '.join(keys)})")
        for k, default in keys.items():
            v = raw_table.get(k, default)
            if k == "layers":
                if not isinstance(v, dict) or sorted(v) != sorted(ARCHS) or not all(
                        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in v.values()):
                    refuse(path, f"study.layers = {v!r}: expected {{ gpt = N, lstm = N, gru = N, rnn = N }}, "
                                 "each a positive integer")
            elif v is not None:
                v = typed(path, f"{table}.{k}", v, default)
            out[k] = v
    if not s["corpus"]:
        refuse(path, "study.corpus is not set: the study needs a kervan corpus with a validation split "
                     "(kervan prepare --val-documents N)")
    if not os.path.isfile(os.path.join(s["corpus"], "manifest.json")):
        refuse(path, f"study.corpus = {s['corpus']!r}: not a kervan corpus folder (no manifest.json)")
    if s["d_model"] % s["n_head"]:
        refuse(path, f"study.d_model = {s['d_model']} is not a multiple of study.n_head = {s['n_head']}")
    if p["keys"] > len(KEY_LETTERS) or p["fillers"] > len(FILLER_LETTERS):
        refuse(path, f"study.probe.keys and fillers: at most {len(KEY_LETTERS)} each")
    out = os.path.abspath(s["out"])
    if os.path.exists(out) and not os.path.isdir(out):
        refuse(path, f"study.out = {s['out']!r}: exists and is not a folder")
    if not os.path.isdir(os.path.dirname(out)):
        refuse(path, f"study.out = {s['out']!r}: no such folder: {os.path.dirname(out)}")
    return s, p


def kervan(binary, *args):
    """Runs kervan; its stdout, or exit with its exit code and the end of its stderr."""
    p = subprocess.run([binary, *args], capture_output=True, text=True)
    if p.returncode != 0:
        print(f"kervan study recurrent: kervan {' '.join(args[:2])} failed (exit {p.returncode}):\n"
              f"{p.stderr[-2000:]}", file=sys.stderr)
        sys.exit(p.returncode if p.returncode in (2, 3, 4) else 1)
    return p


def corpus_vocab(corpus):
    with open(os.path.join(corpus, "manifest.json")) as f:
        return json.load(f)["tokenizer"]["vocab_size"]


def train_config(arch, s, corpus, vocab, *, steps, micro_batch, seq_len, lr, eval_every, max_seq_len, metrics,
                 checkpoints, init_from=None):
    shape = (f"n_head = {s['n_head']}\nmax_seq_len = {max_seq_len}\n" if arch == "gpt"
             else f"residual = {str(s['residual']).lower()}\n")
    evals = f"eval_every = {eval_every}\neval_batches = {s['eval_batches']}\n" if eval_every else ""
    init = f'init_from = "{init_from}"\n' if init_from else ""
    return f"""[model]
arch = "{arch}"
n_layer = {s['layers'][arch]}
{shape}d_model = {s['d_model']}
vocab_size = {vocab}
[data]
path = "{corpus}"
[train]
steps = {steps}
micro_batch = {micro_batch}
seq_len = {seq_len}
lr = {lr}
warmup_steps = {max(1, steps // 20)}
threads = {s['threads']}
{evals}seed = {s['seed']}
[log]
metrics_file = "{metrics}"
[checkpoint]
dir = "{checkpoints}"
{init}"""


def train(binary, arch, s, work, name, **kw):
    """One `kervan train` run in work/name; its config path, metrics lines, logged parameters."""
    run = os.path.join(work, name)
    os.makedirs(run)
    cfg = os.path.join(run, "run.toml")
    metrics = os.path.join(run, "metrics.jsonl")
    with open(cfg, "w") as f:
        f.write(train_config(arch, s, metrics=metrics, checkpoints=os.path.join(run, "ckpt"), **kw))
    p = kervan(binary, "train", "--config", cfg)
    m = re.search(r"([0-9.]+)M parameters", p.stderr + p.stdout)
    with open(metrics) as f:
        steps = [json.loads(line) for line in f if line.strip()]
    return cfg, steps, float(m.group(1)) * 1e6 if m else float("nan")


def grad_norms(binary, cfg, batches, checkpoint=None):
    args = ["study", "grad-norms", "--config", cfg, "--batches", str(batches)]
    norms = json.loads(kervan(binary, *args, *(["--checkpoint", checkpoint] if checkpoint else [])).stdout)["norms"]
    # Entry 0 is the loss position itself; from entry 1 on only the path through time (or
    # attention) reaches the loss. far_over_near: the norm T-1 positions back over the one 1 back;
    # per_step: the geometric mean factor per step from 1 to k = min(10, T-1) back (before fp32
    # underflow, which trained recurrent models reach within the window); zero_from: the first
    # distance whose norm underflowed to 0 (T: none).
    k = min(10, len(norms) - 1)
    far = norms[-1] / norms[1] if len(norms) > 2 and norms[1] > 0 else 0.0
    near = norms[k] / norms[1] if k > 1 and norms[1] > 0 else 0.0
    return {"norms": norms, "far_over_near": far, "per_step": near ** (1.0 / (k - 1)) if k > 1 else 0.0,
            "zero_from": next((i for i, v in enumerate(norms) if v == 0), len(norms))}


def param_count(arch, s, vocab, max_seq_len):
    C, L = s["d_model"], s["layers"][arch]
    if arch == "gpt":
        return vocab * C + max_seq_len * C + L * (12 * C * C + 13 * C) + 2 * C
    return vocab * C + L * {"lstm": 4, "gru": 3, "rnn": 1}[arch] * C * (2 * C + 2)


def lm_study(binary, s, vocab, work, out):
    """(a), (b), (c), (e) on the study corpus."""
    archs = {}
    for arch in ARCHS:
        cfg, steps, logged = train(binary, arch, s, work, arch, corpus=os.path.abspath(s["corpus"]), vocab=vocab,
                                   steps=s["steps"], micro_batch=s["micro_batch"], seq_len=s["seq_len"],
                                   lr=s["lr"], eval_every=s["eval_every"], max_seq_len=s["seq_len"])
        params = param_count(arch, s, vocab, s["seq_len"])
        if not abs(logged - params) <= 6000:  # kervan logs 2 decimals of millions
            sys.exit(f"kervan study recurrent: {arch}: kervan logs {logged:.0f} parameters, the study counts {params}")
        wall, evals = 0.0, []
        for st in steps:
            wall += st["ms_per_step"] / 1e3
            if "val_loss" in st:
                evals.append({"step": st["step"], "tokens": (st["step"] + 1) * s["micro_batch"] * s["seq_len"],
                              "wall_s": wall, "val_loss": st["val_loss"]})
        if not evals:
            sys.exit(f"kervan study recurrent: {arch}: the run logged no validation loss")
        os.makedirs(os.path.join(out, "runs", arch), exist_ok=True)
        for f in ("run.toml", "metrics.jsonl"):
            shutil.copy(os.path.join(work, arch, f), os.path.join(out, "runs", arch, f))
        archs[arch] = {
            "params": params, "n_layer": s["layers"][arch],
            "tokens_per_s": statistics.median(st["tokens_per_s"] for st in steps), "wall_s": wall,
            "train_loss_first": steps[0]["loss"], "train_loss_last": steps[-1]["loss"],
            "val_loss_equal_tokens": evals[-1]["val_loss"], "validations": evals,
            "grad_norms": {"init": grad_norms(binary, cfg, s["grad_batches"]),
                           "trained": grad_norms(binary, cfg, s["grad_batches"], os.path.join(work, arch, "ckpt"))}}
        print(f"{arch}: trained, {archs[arch]['tokens_per_s']:.0f} tokens/s", file=sys.stderr, flush=True)
    # (b) equal wall time: the last validation every run had reached when the fastest run ended.
    budget = min(r["wall_s"] for r in archs.values())
    for r in archs.values():
        reached = [e for e in r["validations"] if e["wall_s"] <= budget * 1.0001]
        r["val_loss_equal_wall"] = reached[-1]["val_loss"] if reached else r["validations"][0]["val_loss"]
    return archs, budget


def probe_text(d, n, p, seed):
    """n documents 'K' + d filler letters + '?' + 'K' (d + 3 bytes, d + 4 tokens with the end of
    text), from a generator seeded by (seed, d)."""
    rng = random.Random(seed * 1_000_003 + d)
    keys, fillers = KEY_LETTERS[:p["keys"]], FILLER_LETTERS[:p["fillers"]]
    lines = []
    for _ in range(n):
        k = rng.choice(keys)
        lines.append(k + "".join(rng.choice(fillers) for _ in range(d)) + "?" + k + "\n<|endoftext|>\n")
    return "".join(lines)


def probe_study(binary, s, p, work):
    """(d): per seed and distance a byte corpus whose documents are exactly one training window
    (seq_len = d + 4: the loader's windows start at multiples of seq_len, so each is one document),
    each architecture trained on it (probe.first_steps at the first distance, probe.steps at the
    others), then scored on the held-out documents. With probe.curriculum each distance starts from
    the architecture's model of the previous one (a fresh optimizer and schedule): from scratch no
    model learned d = 32 in 512 steps, and whether a model learns d = 8 at all within 1024 steps
    varies with the seed; so the first, cheap distance gets the long training and each later one
    measures whether the learned memory stretches to d. probe.seeds repeats it all with seeds
    study.seed, study.seed + 1, ... (corpus, initialisation, data order); the figures are means over
    the seeds, with each seed's under per_seed. GPT's position table is sized for the longest
    distance at every d, so its parameters do not vary and its models carry over."""
    max_seq = max(p["distances"]) + 4
    fields = ("accuracy", "loss", "probability")
    seeds = [s["seed"] + i for i in range(p["seeds"])]
    result = {"distances": p["distances"], "chance": 1.0 / p["keys"], "chance_loss": math.log(p["keys"]),
              **{k: p[k] for k in ("keys", "fillers", "train_documents", "val_documents", "first_steps", "steps",
                                   "micro_batch", "lr", "curriculum")}, "seeds": seeds,
              "archs": {a: {"params": param_count(a, s, 257, max_seq), "per_seed": {f: [] for f in fields}}
                        for a in ARCHS}}
    for seed in seeds:
        run = {**s, "seed": seed}
        for a in ARCHS:
            for f in fields:
                result["archs"][a]["per_seed"][f].append([])
        previous = {}  # arch -> the checkpoint folder of its model at the previous distance
        for i, d in enumerate(p["distances"]):
            text = os.path.join(work, f"probe-{seed}-{d}.txt")
            corpus = os.path.join(work, f"probe-{seed}-{d}")
            with open(text, "w") as f:
                f.write(probe_text(d, p["train_documents"] + p["val_documents"], p, seed))
            kervan(binary, "prepare", "--tokenizer", "bytes", "--val-documents", str(p["val_documents"]), "--seed",
                   str(seed), "--out", corpus, text)
            for arch in ARCHS:
                name = f"probe-{seed}-{d}-{arch}"
                ckpt = os.path.join(work, name, "ckpt")
                cfg, _, _ = train(binary, arch, run, work, name, corpus=corpus, vocab=257,
                                  steps=p["first_steps"] if i == 0 else p["steps"], micro_batch=p["micro_batch"],
                                  seq_len=d + 4, lr=p["lr"], eval_every=0, max_seq_len=max_seq,
                                  init_from=previous.get(arch))
                r = json.loads(kervan(binary, "study", "recall", "--config", cfg, "--checkpoint", ckpt).stdout)
                if r["documents"] != p["val_documents"]:
                    sys.exit(f"kervan study recurrent: {name}: scored {r['documents']} of {p['val_documents']} "
                             "documents")
                for f in fields:
                    result["archs"][arch]["per_seed"][f][-1].append(r[f])
                if arch in previous:
                    shutil.rmtree(previous.pop(arch))
                if p["curriculum"]:
                    previous[arch] = ckpt
                else:
                    shutil.rmtree(ckpt)
            os.remove(text)
            shutil.rmtree(corpus)
            print(f"probe seed {seed} d={d}: accuracy (nats on the key) " + ", ".join(
                f"{a} {result['archs'][a]['per_seed']['accuracy'][-1][-1]:.2f} "
                f"({result['archs'][a]['per_seed']['loss'][-1][-1]:.3f})" for a in ARCHS), file=sys.stderr, flush=True)
    for a in ARCHS:
        r = result["archs"][a]
        for f in fields:
            r[f] = [statistics.fmean(column) for column in zip(*r["per_seed"][f])]
    return result


def gnuplot(script, png):
    """Runs a gnuplot script that writes png + '.tmp'; renamed when complete."""
    p = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    if p.returncode != 0 or not os.path.isfile(png + ".tmp"):
        sys.exit(f"kervan study recurrent: gnuplot failed on {png}: {p.stderr[-1000:]}")
    os.replace(png + ".tmp", png)


HEAD = 'set terminal pngcairo size 1200,900 noenhanced font ",10"\nset grid\nset key top right\n'


def plots(binary, study, out, work):
    kervan(binary, "plot", *[os.path.join(out, "runs", a, "metrics.jsonl") for a in ARCHS], "-o",
           os.path.join(out, "loss.png"))
    head = HEAD
    g = head + f'set output "{os.path.join(out, "grad-norms.png")}.tmp"\nset multiplot layout 2,1\n'
    g += "set logscale y\nset format y '%.0e'\nset xlabel 'positions back from the loss'\n"
    for when in ("init", "trained"):
        series = []
        for a in ARCHS:
            dat = os.path.join(work, f"grad-{a}-{when}.dat")
            with open(dat, "w") as f:
                f.writelines(f"{k} {v:.9g}\n" for k, v in enumerate(study["archs"][a]["grad_norms"][when]["norms"])
                             if v > 0)
            series.append(f'"{dat}" using 1:2 with linespoints pt 7 ps 0.5 title "{a}"')
        g += f"set title 'norm of d(loss at the last position)/d(state), {when}'\nset ylabel 'norm'\n"
        g += "plot " + ", ".join(series) + "\n"
    gnuplot(g + "unset multiplot\nset output\n", os.path.join(out, "grad-norms.png"))
    probe_plot(study["probe"], out, work)


def probe_plot(probe, out, work):
    """OUT/probe.png: accuracy and the cross-entropy of the key against d, with chance."""
    g = HEAD + f'set output "{os.path.join(out, "probe.png")}.tmp"\nset multiplot layout 2,1\nset logscale x 2\n'
    g += "set xlabel 'distance d (filler tokens between key and query)'\n"
    how = "each d starting from the model of the previous d" if probe["curriculum"] else "from scratch"
    how += f", mean of {len(probe['seeds'])} seeds"
    for field, label, chance, yrange in (("accuracy", "recall accuracy", probe["chance"], "[0:1.05]"),
                                         ("loss", "cross-entropy of the key (nats)", probe["chance_loss"], "[0:*]")):
        series = []
        for a in ARCHS:
            dat = os.path.join(work, f"probe-{a}-{field}.dat")
            with open(dat, "w") as f:
                f.writelines(f"{d} {v}\n" for d, v in zip(probe["distances"], probe["archs"][a][field]))
            series.append(f'"{dat}" using 1:2 with linespoints pt 7 title "{a}"')
        series.append(f'{chance} with lines dashtype 2 title "chance"')
        g += (f"set yrange {yrange}\nset ylabel '{label}'\nset title 'long-dependency probe ({probe['first_steps']} "
              f"steps of {probe['micro_batch']} documents at d = {probe['distances'][0]}, {probe['steps']} at each "
              f"later d, {how})'\nplot " + ", ".join(series) + "\n")
    gnuplot(g + "unset multiplot\nset output\n", os.path.join(out, "probe.png"))


def check(path):
    """Every field present and finite; exit 1 naming what is not."""
    with open(path) as f:
        j = json.load(f, parse_constant=lambda c: float(c))
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
    probe = j.get("probe", {})
    for field in ("distances", "seeds", "chance", "chance_loss"):
        if field not in probe:
            bad.append(f"probe.{field}: missing")
    for arch in ARCHS:
        n = len(probe.get("distances", []))
        for field in ("accuracy", "loss", "probability"):
            r = probe.get("archs", {}).get(arch, {})
            v, per_seed = r.get(field), r.get("per_seed", {}).get(field)
            if not isinstance(v, list) or len(v) != n:
                bad.append(f"probe.archs.{arch}.{field}: missing, or not one per distance")
            if not isinstance(per_seed, list) or len(per_seed) != len(probe.get("seeds", [])) or any(
                    len(row) != n for row in per_seed):
                bad.append(f"probe.archs.{arch}.per_seed.{field}: missing, or not one per seed and distance")
    if j.get("probe_only") is not True:
        lm_fields(j, bad)
    if bad:
        sys.exit("recurrent_study --check: " + "; ".join(bad))
    print(f"{path}: every field present and finite")


def lm_fields(j, bad):
    """(a), (b), (c), (e) present: the whole study's JSON."""
    archs = j.get("archs", {})
    for arch in ARCHS:
        a = archs.get(arch, {})
        for field in ("params", "tokens_per_s", "wall_s", "val_loss_equal_tokens", "val_loss_equal_wall",
                      "validations", "grad_norms"):
            if field not in a:
                bad.append(f"archs.{arch}.{field}: missing")
        for when in ("init", "trained"):
            g = a.get("grad_norms", {}).get(when, {})
            for field in ("norms", "far_over_near", "per_step", "zero_from"):
                if field not in g:
                    bad.append(f"archs.{arch}.grad_norms.{when}.{field}: missing")
            if len(g.get("norms", [])) != j.get("seq_len"):
                bad.append(f"archs.{arch}.grad_norms.{when}.norms: not one norm per position")
    for field in ("lstm_layer_params", "gru_layer_params", "gru_over_lstm"):
        if field not in j.get("equal_width", {}):
            bad.append(f"equal_width.{field}: missing")


def write_json(path, value):
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=1)
    os.replace(path + ".tmp", path)


def print_probe(probe):
    for arch in ARCHS:
        r = probe["archs"][arch]
        print(f"{arch:5} probe accuracy " + " ".join(f"{v:.2f}" for v in r["accuracy"]) + "  nats on the key "
              + " ".join(f"{v:.3f}" for v in r["loss"]))
    print(f"probe distances {probe['distances']}, chance {probe['chance']:.3f} ({probe['chance_loss']:.3f} nats)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kervan", default="build/kervan")
    ap.add_argument("--config", help="the study's TOML config")
    ap.add_argument("--probe-only", action="store_true", help="run (d) alone: OUT/probe.json, OUT/probe.png")
    ap.add_argument("--check", metavar="FILE")
    a = ap.parse_args()
    if a.check:
        return check(a.check)
    if not a.config:
        ap.error("--config is required (or --check FILE)")
    s, p = load_config(a.config)
    vocab = corpus_vocab(s["corpus"])
    out = os.path.abspath(s["out"])
    os.makedirs(out, exist_ok=True)
    head = {"config": os.path.abspath(a.config), "probe_only": a.probe_only}
    if a.probe_only:
        with tempfile.TemporaryDirectory(prefix="kervan-study.") as work:
            probe = probe_study(a.kervan, s, p, work)
            probe_plot(probe, out, work)
        path = os.path.join(out, "probe.json")
        write_json(path, {**head, "probe": probe})
        print_probe(probe)
        print(f"wrote {path}, {os.path.join(out, 'probe.png')}")
        return
    with tempfile.TemporaryDirectory(prefix="kervan-study.") as work:
        archs, budget = lm_study(a.kervan, s, vocab, work, out)
        C = s["d_model"]
        lstm_layer, gru_layer = 4 * C * (2 * C) + 8 * C, 3 * C * (2 * C) + 6 * C
        study = {**head, "corpus": os.path.abspath(s["corpus"]), "vocab": vocab, "d_model": C,
                 "residual": s["residual"], "threads": s["threads"], "seq_len": s["seq_len"],
                 "micro_batch": s["micro_batch"], "steps": s["steps"],
                 "tokens": s["steps"] * s["micro_batch"] * s["seq_len"], "equal_wall_s": budget, "archs": archs,
                 "equal_width": {"d_model": C, "lstm_layer_params": lstm_layer, "gru_layer_params": gru_layer,
                                 "gru_over_lstm": gru_layer / lstm_layer},
                 "probe": probe_study(a.kervan, s, p, work)}
        plots(a.kervan, study, out, work)
    path = os.path.join(out, "study.json")
    write_json(path, study)
    for arch, r in archs.items():
        g = r["grad_norms"]
        print(f"{arch:5} {r['params'] / 1e6:6.3f}M params  {r['tokens_per_s']:8.0f} tok/s  {r['wall_s']:7.1f} s  "
              f"val {r['val_loss_equal_tokens']:.4f} (equal tokens) {r['val_loss_equal_wall']:.4f} (equal wall "
              f"{budget:.1f} s)  grad far/near {g['init']['far_over_near']:.2e} init, "
              f"{g['trained']['far_over_near']:.2e} trained")
    print_probe(study["probe"])
    print(f"wrote {path}, {', '.join(os.path.join(out, n) for n in ('loss.png', 'grad-norms.png', 'probe.png'))}")


if __name__ == "__main__":
    main()
