#!/usr/bin/env bash
# Training on the GPU from the command line, end to end (run by scripts/gpu-check.sh on a GPU
# machine; it needs one): a run of 12 steps straight, the same run twice (bit-identical: no
# atomics anywhere), and the same 12 steps killed with SIGKILL before step 8
# (KERVAN_FAILPOINT=train_step@8; checkpoints every 3 steps, saved from device memory in the
# background) then started again: the restart resumes from the newest committed checkpoint and
# logs every remaining step with the straight run's loss, bit for bit. Then the checkpoint is
# exported to Hugging Face's format and read back by `kervan ckpt import`.
#   resume.sh path/to/kervan [--set KEY=VALUE ...]   (e.g. --set train.precision=\"bf16\")
set -uo pipefail
kervan=${1:?usage: resume.sh path/to/kervan [--set KEY=VALUE ...]}
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/../e2e/lib.sh"

small_text 200 "$work/a.txt"
"$kervan" prepare --tokenizer bytes --out "$work/a.bin" "$work/a.txt" 2>/dev/null || fail "prepare"
cat >"$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 4
d_model = 256  # head size 64: at bf16 the tensor-core attention (attention_flash.cu) runs
vocab_size = 256
[data]
path = "$work/a.bin"
[train]
device = "cuda"
steps = 12
micro_batch = 8
seq_len = 128
lr = 3e-3
warmup_steps = 2
[checkpoint]
every = 3
TOML

run() {  # NAME [env...]: one run into NAME.ckpt / NAME.jsonl
  local name=$1
  shift
  env "$@" "$kervan" train --config "$work/c.toml" "${sets[@]}" --set "checkpoint.dir=\"$work/$name.ckpt\"" \
    --set "log.metrics_file=\"$work/$name.jsonl\"" >"$work/$name.out" 2>&1
}
sets=("$@")
run straight || fail "straight run: $(tail -3 "$work/straight.out")"
run again || fail "second run: $(tail -3 "$work/again.out")"
losses_match "repeat" "$work/straight.jsonl" "$work/again.jsonl" 0 11 0
(run killed KERVAN_FAILPOINT=train_step@8) 2>/dev/null  # (its own shell reports the kill)
[[ -f $work/killed.ckpt/latest ]] || fail "no checkpoint before the kill: $(tail -3 "$work/killed.out")"
run killed || fail "resumed run: $(tail -3 "$work/killed.out")"
grep -q "resumed from $work/killed.ckpt/step_0000000[36]" "$work/killed.out" ||
  fail "did not resume from step 3 or 6: $(grep -i resum "$work/killed.out")"
losses_match "resume" "$work/straight.jsonl" "$work/killed.jsonl" 0 11 0
first=$(losses "$work/straight.jsonl" | head -1) last=$(losses "$work/straight.jsonl" | tail -1)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.8 * a) }' || fail "the loss did not fall: $first -> $last"
"$kervan" ckpt export --format hf "$work/straight.ckpt" "$work/hf" >/dev/null 2>&1 || fail "export"
"$kervan" ckpt import --format hf "$work/hf" "$work/back" >/dev/null 2>&1 || fail "import of the export"
finish "resume on the GPU ($*)" "repeat bit-identical, resumed bit for bit, loss $first -> $last, exported and imported"
