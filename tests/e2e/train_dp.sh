#!/usr/bin/env bash
# `kervan train` under mpirun: DP=2 and DP=2 with ZeRO-1 reproduce the single-process losses for
# the same global batch (to 1e-5 relative: fp32 summation order is all that differs), and
# parallel-layout mistakes end every rank with exit code 2.
set -uo pipefail
kervan=${1:?usage: train_dp.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
mpi=(mpirun -np 2 --oversubscribe)

small_text 80 "$work/t.txt"
"$kervan" prepare --tokenizer bytes --out "$work/t.bin" "$work/t.txt" 2>/dev/null || fail prepare
cat > "$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 2
d_model = 32
vocab_size = 256
[data]
path = "$work/t.bin"
[train]
steps = 6
micro_batch = 4
seq_len = 32
grad_accum = 2
lr = 3e-3
warmup_steps = 2
threads = 1
[parallel]
bucket_mb = 0.01
TOML
"$kervan" train --config "$work/c.toml" --set train.micro_batch=8 --set log.metrics_file="\"$work/dp1.jsonl\"" 2>/dev/null || fail "dp1"
"${mpi[@]}" "$kervan" train --config "$work/c.toml" --set log.metrics_file="\"$work/dp2.jsonl\"" >/dev/null 2>&1 || fail "dp2"
"${mpi[@]}" "$kervan" train --config "$work/c.toml" --set parallel.zero=1 --set log.metrics_file="\"$work/z1.jsonl\"" >/dev/null 2>&1 || fail "zero1"
for run in dp2 z1; do
  same_losses "$run" "$work/dp1.jsonl" "$work/$run.jsonl" 6
done
grep -q '"exposed_comm_ms"' "$work/dp2.jsonl" || fail "dp2 metrics lack exposed_comm_ms"

expect_error "tp does not divide" "parallel.tp (3) does not divide the number of processes (2)" \
  "${mpi[@]}" "$kervan" train --config "$work/c.toml" --set parallel.tp=3
expect_error "zero=2" "parallel.zero must be >= 0 and <= 1, got 2" "${mpi[@]}" "$kervan" train --config "$work/c.toml" --set parallel.zero=2
expect_error "mismatched ranks" "the resolved config of rank 1 differs from rank 0's" \
  mpirun -np 1 "$kervan" train --config "$work/c.toml" : -np 1 "$kervan" train --config "$work/c.toml" --set train.lr=1e-3

finish train_dp "DP=2 and ZeRO-1 match DP=1; layout errors exit 2"
