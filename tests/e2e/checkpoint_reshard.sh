#!/usr/bin/env bash
# Resume under another layout. A DP=2 x TP=2 run with ZeRO-1 (np 4) saves after step 5 and is
# killed; copies of its checkpoint folder then resume under np 1, DP=3 with ZeRO-1 (np 3), TP=4
# (np 4) and plain DP=2 (ZeRO-1 -> off), the global batch (12 sequences) the same in all. Every
# resumed run logs steps 5..9 within 1e-5 relative of the uninterrupted DP=2 x TP=2 run (only fp32
# summation order differs between layouts), and resumes at consumed_samples 60 (the data position
# carries over). The per-tensor state after such loads is checked element-exact in
# tests/unit/test_checkpoint.cpp.
set -uo pipefail
kervan=${1:?usage: checkpoint_reshard.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
mpi() {
  local n=$1
  shift
  mpirun -np "$n" --oversubscribe "$@"
}

small_text 80 "$work/t.txt"
"$kervan" prepare --tokenizer bytes --out "$work/t.bin" "$work/t.txt" 2>/dev/null || fail "prepare"
cat >"$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 4
d_model = 32
vocab_size = 256
[data]
path = "$work/t.bin"
[train]
steps = 10
micro_batch = 6
seq_len = 32
lr = 3e-3
warmup_steps = 2
threads = 1
[parallel]
tp = 2
zero = 1
[checkpoint]
every = 5
async = false
TOML
out() { echo --set "log.metrics_file=\"$work/$1.jsonl\"" --set "checkpoint.dir=\"$work/$1.ckpt\""; }

# shellcheck disable=SC2046
mpi 4 "$kervan" train --config "$work/c.toml" $(out straight) >/dev/null 2>&1 || fail "straight DP=2 x TP=2"
# shellcheck disable=SC2046
KERVAN_FAILPOINT=train_step@5 bash -c '"$@"; exit $?' - mpirun -np 4 --oversubscribe "$kervan" train --config "$work/c.toml" $(out saved) \
  >/dev/null 2>&1
[[ $(cat "$work/saved.ckpt/latest" 2>/dev/null) == step_00000005 ]] || fail "no step_00000005 before the kill"

# resume NAME NP SETTINGS...: a copy of the saved folder resumed under another layout.
resume() {
  local name=$1 np=$2
  shift 2
  cp -r "$work/saved.ckpt" "$work/$name.ckpt"
  # shellcheck disable=SC2046
  mpi "$np" "$kervan" train --config "$work/c.toml" "$@" $(out "$name") >"$work/$name.out" 2>&1 ||
    fail "$name: $(tail -2 "$work/$name.out")"
  grep -q "resumed from $work/$name.ckpt/step_00000005: step 5, consumed_samples 60, written by DP=2 x TP=2, ZeRO-1 (4 ranks) (resharded" \
    "$work/$name.out" || fail "$name: $(grep -i resum "$work/$name.out")"
  losses_match "$name" "$work/straight.jsonl" "$work/$name.jsonl" 5 9 1e-5
}

resume np1 1 --set parallel.tp=1 --set parallel.zero=0 --set train.micro_batch=12
resume dp3 3 --set parallel.tp=1 --set train.micro_batch=4
resume tp4 4 --set parallel.tp=4 --set train.micro_batch=12
resume zero_off 2 --set parallel.tp=1 --set parallel.zero=0

finish checkpoint_reshard "DP=2 x TP=2 ZeRO-1 resumed under np 1, DP=3, TP=4 and plain DP=2 within 1e-5"
