#!/usr/bin/env bash
# `kervan train` with tensor parallelism under mpirun: TP=2, TP=4 and DP=2 x TP=2 (plain and with
# ZeRO-1) reproduce the single-process losses for the same global batch (to 1e-5 relative: fp32
# summation order is all that differs), sampling after training under TP=2 prints the single-process sample, and layouts
# the model cannot split end every rank with exit code 2 and a message naming parallel.tp.
set -uo pipefail
kervan=${1:?usage: train_tp.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
mpi() { local n=$1; shift; mpirun -np "$n" --oversubscribe "$@"; }

small_text 80 "$work/t.txt"
"$kervan" prepare --tokenizer bytes --out "$work/t.bin" "$work/t.txt" 2>/dev/null || fail prepare
cat > "$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 4
d_model = 32
vocab_size = 256
[data]
path = "$work/t.bin"
tokenizer = "none"
[train]
steps = 6
micro_batch = 4
seq_len = 32
grad_accum = 2
lr = 3e-3
warmup_steps = 2
threads = 1
[sample]
tokens = 24
temperature = 1.0
TOML
metrics() { echo "--set log.metrics_file=\"$work/$1.jsonl\""; }
# shellcheck disable=SC2046
"$kervan" train --config "$work/c.toml" $(metrics tp1) >"$work/tp1.out" 2>/dev/null || fail "tp1"
# shellcheck disable=SC2046
mpi 2 "$kervan" train --config "$work/c.toml" --set parallel.tp=2 $(metrics tp2) >"$work/tp2.out" 2>/dev/null || fail "tp2"
# shellcheck disable=SC2046
mpi 4 "$kervan" train --config "$work/c.toml" --set parallel.tp=4 $(metrics tp4) >/dev/null 2>&1 || fail "tp4"
# shellcheck disable=SC2046
mpi 4 "$kervan" train --config "$work/c.toml" --set parallel.tp=2 --set train.micro_batch=2 $(metrics dp2tp2) \
  >/dev/null 2>&1 || fail "dp2tp2"
# shellcheck disable=SC2046
mpi 4 "$kervan" train --config "$work/c.toml" --set parallel.tp=2 --set train.micro_batch=2 --set parallel.zero=1 \
  $(metrics dp2tp2z1) >/dev/null 2>&1 || fail "dp2tp2z1"
for run in tp2 tp4 dp2tp2 dp2tp2z1; do
  same_losses "$run" "$work/tp1.jsonl" "$work/$run.jsonl" 6
done
sample() { sed -n '/----- sample/,/^-----$/p' "$1"; }
[[ $(sample "$work/tp1.out" | wc -w) -ge 24 ]] || fail "tp1 printed no sample"
[[ $(sample "$work/tp1.out") == "$(sample "$work/tp2.out")" ]] || fail "TP=2 sample differs from TP=1's"
[[ $(grep -c -- "----- sample" "$work/tp2.out") -eq 1 ]] || fail "TP=2 printed the sample more than once"

expect_error "heads do not split" "parallel.tp = 2 does not divide model.n_head (3)" \
  mpi 2 "$kervan" train --config "$work/c.toml" --set parallel.tp=2 --set model.n_head=3 --set model.d_model=30
expect_error "vocabulary does not split" "parallel.tp = 3 does not divide the padded vocabulary (256)" \
  mpi 3 "$kervan" train --config "$work/c.toml" --set parallel.tp=3 --set model.n_head=3 --set model.d_model=30

finish train_tp "TP=2, TP=4, DP=2 x TP=2 and DP=2 x TP=2 ZeRO-1 match TP=1; TP sampling matches; layout errors exit 2"
