#!/usr/bin/env bash
# Exact resume: for each layout, a run of 12 steps straight, and a run of the same 12 steps killed
# with SIGKILL before step 8 (KERVAN_FAILPOINT=train_step@8; checkpoints every 3 steps, written in
# the background) and then started again. The second start resumes from the newest committed
# checkpoint and logs every remaining step with the straight run's loss, bit for bit: plain,
# gradient accumulation, a blended corpus, ZeRO-1 (np 2), TP=2 (np 2).
set -uo pipefail
kervan=${1:?usage: checkpoint_resume.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

small_text 80 "$work/a.txt"
for i in $(seq 1 60); do echo "Another source $i: numbers, commas; and a different rhythm to tell the blend apart."; done >"$work/b.txt"
"$kervan" prepare --tokenizer bytes --out "$work/a.bin" "$work/a.txt" 2>/dev/null || fail "prepare a"
"$kervan" prepare --tokenizer bytes --out "$work/b.bin" "$work/b.txt" 2>/dev/null || fail "prepare b"
cat >"$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 4
d_model = 32
vocab_size = 256
[data]
path = "$work/a.bin"
[train]
steps = 12
micro_batch = 4
seq_len = 32
lr = 3e-3
warmup_steps = 2
threads = 1
[checkpoint]
every = 3
TOML

# run NAME NP LAUNCH_ARGS... : straight, then killed + resumed; compares the two.
run() {
  local name=$1 np=$2
  shift 2
  local launch=("$kervan")
  ((np > 1)) && launch=(mpirun -np "$np" --oversubscribe "$kervan")
  local set=(--set "checkpoint.dir=\"$work/$name.straight\"" --set "log.metrics_file=\"$work/$name.straight.jsonl\"")
  "${launch[@]}" train --config "$work/c.toml" "$@" "${set[@]}" >/dev/null 2>&1 || fail "$name: straight run"
  set=(--set "checkpoint.dir=\"$work/$name.ckpt\"" --set "log.metrics_file=\"$work/$name.jsonl\"")
  # (in a shell of its own, which reports the kill instead of this one)
  KERVAN_FAILPOINT=train_step@8 bash -c '"$@"; exit $?' - "${launch[@]}" train --config "$work/c.toml" "$@" "${set[@]}" \
    >/dev/null 2>&1
  [[ -f $work/$name.ckpt/latest ]] || fail "$name: no checkpoint before the kill"
  "${launch[@]}" train --config "$work/c.toml" "$@" "${set[@]}" >"$work/$name.out" 2>&1 || fail "$name: resumed run"
  grep -q "resumed from $work/$name.ckpt/step_0000000[36]" "$work/$name.out" ||
    fail "$name: did not resume from step 3 or 6: $(grep -i resum "$work/$name.out")"
  losses_match "$name" "$work/$name.straight.jsonl" "$work/$name.jsonl" 0 11 0
  [[ $(cat "$work/$name.ckpt/latest") == step_00000012 ]] || fail "$name: latest is $(cat "$work/$name.ckpt/latest")"
}

run plain 1
run accum 1 --set train.grad_accum=2 --set train.micro_batch=2
run blend 1 --set "data.path=[\"$work/a.bin\", \"$work/b.bin\"]" --set "data.weights=[0.7, 0.3]"
run zero1 2 --set parallel.zero=1 --set train.micro_batch=2
run tp2 2 --set parallel.tp=2

finish checkpoint_resume "killed and resumed runs match straight runs bit for bit (plain, accum, blend, ZeRO-1, TP=2)"
