#!/usr/bin/python3
"""Training throughput of several kervan binaries (and the PyTorch peer) in one interleaved run.

The machine is shared and noisy, so each round runs every contender once, in a rotated order, and
the table shows medians and the ratio of each to the first contender. Typical use: the binary
before a change against the one after it, with PyTorch eager as the fixed peer.

  bench/before_after.py [--rounds R] [--np N] [--no-torch] NAME=BINARY [NAME=BINARY ...] -- <bench train args>
  bench/before_after.py before=/tmp/kervan-old after=build/kervan -- --preset gpt2-small --batch 4 --seq 64 --threads 2 --steps 5

With --np N every kervan run goes under `mpirun -np N` (--tp in the bench args splits the model);
PyTorch is then left out.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"before_after.py: {' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit(__doc__)
    split = argv.index("--")
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--np", type=int, default=1)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("contenders", nargs="+", help="NAME=BINARY")
    opts = p.parse_args(argv[:split])
    bench_args = argv[split + 1:]
    contenders = []
    for c in opts.contenders:
        name, _, binary = c.partition("=")
        if not binary or not os.access(binary, os.X_OK):
            sys.exit(f"before_after.py: '{c}' is not NAME=EXECUTABLE")
        mpi = []
        if opts.np > 1:
            mpi = ["mpirun", "-np", str(opts.np), "--oversubscribe", "--bind-to", "none"]
        contenders.append((name, mpi + [binary, "bench", "train"] + bench_args))
    if opts.np == 1 and not opts.no_torch:
        contenders.append(("torch", ["/usr/bin/python3", os.path.join(HERE, "torch_gpt.py")] + bench_args))
    env_note = f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '<unset>')}"
    print(f"# {' '.join(bench_args)}; np {opts.np}; {env_note}")
    results = {name: [] for name, _ in contenders}
    for r in range(opts.rounds):
        order = contenders[r % len(contenders):] + contenders[: r % len(contenders)]
        for name, cmd in order:
            res = run(cmd)
            results[name].append(res)
            print(f"  round {r + 1} {name}: {res['tokens_per_s']:.1f} tok/s, {res['ms_per_step']:.1f} ms/step")
    first = contenders[0][0]
    med = {n: statistics.median(x["tokens_per_s"] for x in v) for n, v in results.items()}
    print(f"\n{'contender':<12}{'tokens/s (median)':>19}{'vs ' + first:>14}")
    for n, v in med.items():
        print(f"{n:<12}{v:>19.1f}{v / med[first]:>13.2f}x")
    print(json.dumps({"bench_args": " ".join(bench_args), "np": opts.np, "median_tokens_per_s": med}))


if __name__ == "__main__":
    main()
