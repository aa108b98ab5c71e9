#!/usr/bin/env bash
# Checkpoints of BERT and T5 (v1.1, gated GELU: its LM head is not tied) under `kervan train`, as
# checkpoint_resume.sh and checkpoint_reshard.sh check them for GPT. For each family a TP=2 run
# (np 2) of 10 steps saves every 5 steps; the same run killed with SIGKILL before step 8 and
# started again resumes from step 5 and logs steps 0..9 with the straight run's losses, bit for
# bit; a copy of the killed run's checkpoint resumes under one process (TP=2 -> TP=1) and logs
# steps 5..9 within 1e-5 relative (only fp32 summation order differs), and under DP=2 with ZeRO-1
# likewise. The manifest records the family; a checkpoint of another family is refused by resume
# and by init_from with exit code 2, naming both families.
set -uo pipefail
kervan=${1:?usage: checkpoint_families.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
mpi=(mpirun -np 2 --oversubscribe)

for i in $(seq 1 80); do
  echo "Document $i talks about rivers and the sea, and the sea again, said sailor number $i."
  echo "<|endoftext|>"
done > "$work/a.txt"
"$kervan" prepare --tokenizer bytes --val-fraction 0 --out "$work/A" "$work/a.txt" 2>/dev/null || fail "prepare"

config() {  # config ARCH VOCAB
  cat <<TOML
[model]
arch = "$1"
n_layer = 2
n_head = 2
d_model = 32
vocab_size = $2
[data]
path = "$work/A"
[train]
steps = 10
micro_batch = 8
seq_len = 32
lr = 3e-3
warmup_steps = 2
threads = 1
[parallel]
tp = 2
[checkpoint]
every = 5
async = false
TOML
}
config bert 261 > "$work/bert.toml"  # 257 byte tokens + [PAD] [CLS] [SEP] [MASK]
config t5 358 > "$work/t5.toml"      # 257 + [PAD] + 100 sentinels
sed -i 's/^\[model\]$/[model]\nt5_ffn = "gated-gelu"/' "$work/t5.toml"

out() { echo --set "log.metrics_file=\"$work/$1.jsonl\"" --set "checkpoint.dir=\"$work/$1.ckpt\""; }
for arch in bert t5; do
  c="$work/$arch.toml"
  # shellcheck disable=SC2046
  "${mpi[@]}" "$kervan" train --config "$c" $(out "$arch-straight") >/dev/null 2>"$work/err" ||
    fail "$arch straight: $(tail -2 "$work/err")"
  python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))["values"]; sys.exit(v.get("model_config/family") != {"string": sys.argv[2]})' \
    "$work/$arch-straight.ckpt/step_00000010/manifest.json" "$arch" || fail "$arch: the manifest does not record the family"
  # shellcheck disable=SC2046
  KERVAN_FAILPOINT=train_step@8 bash -c '"$@"; exit $?' - "${mpi[@]}" "$kervan" train --config "$c" $(out "$arch-killed") \
    >/dev/null 2>&1
  [[ $(cat "$work/$arch-killed.ckpt/latest" 2>/dev/null) == step_00000005 ]] || fail "$arch: no step_00000005 before the kill"
  for copy in np1 zero1; do cp -r "$work/$arch-killed.ckpt" "$work/$arch-$copy.ckpt"; done
  # shellcheck disable=SC2046
  "${mpi[@]}" "$kervan" train --config "$c" $(out "$arch-killed") >"$work/out" 2>&1 || fail "$arch resumed: $(tail -2 "$work/out")"
  grep -q "resumed from $work/$arch-killed.ckpt/step_00000005: step 5, consumed_samples 40, written by DP=1 x TP=2 (2 ranks)$" "$work/out" ||
    fail "$arch: $(grep -i resum "$work/out")"
  losses_match "$arch resume" "$work/$arch-straight.jsonl" "$work/$arch-killed.jsonl" 0 9 0
  # shellcheck disable=SC2046
  "$kervan" train --config "$c" --set parallel.tp=1 $(out "$arch-np1") >"$work/out" 2>&1 || fail "$arch np1: $(tail -2 "$work/out")"
  grep -q "written by DP=1 x TP=2 (2 ranks) (resharded to DP=1 x TP=1 (1 rank))$" "$work/out" || fail "$arch np1: $(grep -i resum "$work/out")"
  losses_match "$arch TP=2 -> np 1" "$work/$arch-straight.jsonl" "$work/$arch-np1.jsonl" 5 9 1e-5
  # shellcheck disable=SC2046
  "${mpi[@]}" "$kervan" train --config "$c" --set parallel.tp=1 --set parallel.zero=1 --set train.micro_batch=4 \
    $(out "$arch-zero1") >"$work/out" 2>&1 || fail "$arch zero1: $(tail -2 "$work/out")"
  losses_match "$arch TP=2 -> DP=2 ZeRO-1" "$work/$arch-straight.jsonl" "$work/$arch-zero1.jsonl" 5 9 1e-5
done

expect_error "resume from another family" "holds a bert model, but model.arch is \"t5\"" \
  "$kervan" train --config "$work/t5.toml" --set parallel.tp=1 --set checkpoint.resume="\"$work/bert-straight.ckpt\""
expect_error "init_from another family" "checkpoint.init_from $work/t5-straight.ckpt/step_00000010 holds a t5 model, but model.arch is \"bert\"" \
  "$kervan" train --config "$work/bert.toml" --set parallel.tp=1 --set checkpoint.init_from="\"$work/t5-straight.ckpt\""
expect_error "init_from another feed-forward" "holds a t5 model with model.t5_ffn = \"gated-gelu\", but this config has \"relu\"" \
  "$kervan" train --config "$work/t5.toml" --set parallel.tp=1 --set model.t5_ffn='"relu"' \
  --set checkpoint.init_from="\"$work/t5-straight.ckpt\""

finish checkpoint_families "BERT and T5 resume bit for bit after SIGKILL and reshard TP=2 -> np 1 and DP=2 ZeRO-1 within 1e-5; other families refused"
