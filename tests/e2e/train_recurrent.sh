#!/usr/bin/env bash
# `kervan train` for the recurrent families on a kervan corpus of byte tokens: rnn, lstm and gru
# train (the loss falls) and sample text; DP=2 reproduces one process (to 1e-5 relative, with and
# without the carried state); with model.carry_state a run killed before step 8 (checkpoints every
# 3 steps) and resumed logs every later step with the straight run's loss bit for bit (the carried
# hidden state is in the checkpoint); a checkpoint starts a run of another seq_len. Mistakes exit 2
# naming the key: parallel.tp = 2, transformer-only keys, carry_state with grad_accum or a blend,
# finetune.
set -uo pipefail
kervan=${1:?usage: train_recurrent.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
mpi=(mpirun -np 2 --oversubscribe)

for i in $(seq 1 80); do
  echo "Document $i talks about rivers and the sea, and the sea again, said sailor number $i."
  echo "<|endoftext|>"
done >"$work/a.txt"
"$kervan" prepare --tokenizer bytes --val-documents 4 --out "$work/A" "$work/a.txt" 2>/dev/null || fail "prepare"

config() {  # config ARCH
  cat <<TOML
[model]
arch = "$1"
n_layer = 2
d_model = 32
vocab_size = 257
[data]
path = "$work/A"
[train]
steps = 12
micro_batch = 4
seq_len = 16
lr = 1e-2
warmup_steps = 2
threads = 1
eval_every = 6
eval_batches = 2
[parallel]
bucket_mb = 0.01
TOML
}
for arch in rnn lstm gru; do config $arch >"$work/$arch.toml"; done

for arch in rnn lstm gru; do
  c="$work/$arch.toml"
  "$kervan" train --config "$c" --set train.micro_batch=8 --set log.metrics_file="\"$work/$arch-1.jsonl\"" \
    --set sample.tokens=20 >"$work/$arch.out" 2>"$work/err" || fail "$arch: $(tail -3 "$work/err")"
  first=$(losses "$work/$arch-1.jsonl" | head -1)
  last=$(losses "$work/$arch-1.jsonl" | tail -1)
  awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < f - 0.5) }' || fail "$arch: loss did not fall ($first -> $last)"
  grep -q -- "----- sample (20 tokens" "$work/$arch.out" || fail "$arch: no sample"
  "${mpi[@]}" "$kervan" train --config "$c" --set log.metrics_file="\"$work/$arch-dp2.jsonl\"" >/dev/null 2>&1 ||
    fail "$arch dp2"
  same_losses "$arch dp2" "$work/$arch-1.jsonl" "$work/$arch-dp2.jsonl" 12
done

# Carried state: DP=2 equals one process; and an exact resume.
c="$work/lstm.toml"
carry=(--set model.carry_state=true --set train.micro_batch=2)
"$kervan" train --config "$c" "${carry[@]}" --set train.micro_batch=4 --set log.metrics_file="\"$work/carry-1.jsonl\"" \
  >/dev/null 2>"$work/err" || fail "carry: $(tail -3 "$work/err")"
"${mpi[@]}" "$kervan" train --config "$c" "${carry[@]}" --set log.metrics_file="\"$work/carry-dp2.jsonl\"" \
  >/dev/null 2>&1 || fail "carry dp2"
same_losses "carry dp2" "$work/carry-1.jsonl" "$work/carry-dp2.jsonl" 12
set=(--set "checkpoint.dir=\"$work/ck\"" --set checkpoint.every=3 --set log.metrics_file="\"$work/carry-r.jsonl\"")
KERVAN_FAILPOINT=train_step@8 bash -c '"$@"; exit $?' - "$kervan" train --config "$c" "${carry[@]}" \
  --set train.micro_batch=4 "${set[@]}" >/dev/null 2>&1
[[ -f $work/ck/latest ]] || fail "carry: no checkpoint before the kill"
"$kervan" train --config "$c" "${carry[@]}" --set train.micro_batch=4 "${set[@]}" >"$work/resume.out" 2>&1 ||
  fail "carry: resumed run: $(tail -3 "$work/resume.out")"
grep -q "resumed from $work/ck/step_0000000[36]" "$work/resume.out" || fail "carry: did not resume"
losses_match "carry resume" "$work/carry-1.jsonl" "$work/carry-r.jsonl" 0 11 0
# A recurrent model has no position table: its weights start a run of another seq_len (the
# recurrent study's curriculum), at step 0 and with the checkpoint's loss, not a fresh model's.
for run in init32 fresh32; do
  from=()
  [[ $run == init32 ]] && from=(--set "checkpoint.init_from=\"$work/ck\"")
  "$kervan" train --config "$c" --set train.seq_len=32 --set train.steps=2 "${from[@]}" \
    --set log.metrics_file="\"$work/$run.jsonl\"" >/dev/null 2>"$work/err" || fail "$run: $(tail -3 "$work/err")"
done
init=$(losses "$work/init32.jsonl" | head -1)
fresh=$(losses "$work/fresh32.jsonl" | head -1)
awk -v a="$init" -v b="$fresh" 'BEGIN { exit !(a < b - 0.5) }' || fail "init_from at seq_len 32: first loss $init, fresh $fresh"

expect_error "tp" 'parallel.tp = 2: recurrent models (model.arch = "lstm") are not split' \
  "${mpi[@]}" "$kervan" train --config "$c" --set parallel.tp=2
expect_error "n_head" 'model.n_head does not apply to model.arch = "gru"' \
  "$kervan" train --config "$work/gru.toml" --set model.n_head=2
expect_error "max_seq_len" 'model.max_seq_len does not apply' \
  "$kervan" train --config "$work/rnn.toml" --set model.max_seq_len=64
expect_error "tied on gpt" 'model.tied applies to the recurrent families' \
  "$kervan" train --config "$c" --set model.arch=gpt --set model.n_head=2 --set model.tied=false
expect_error "carry + grad_accum" 'model.carry_state = true needs train.grad_accum = 1' \
  "$kervan" train --config "$c" --set model.carry_state=true --set train.grad_accum=2
expect_error "carry + blend" 'a blend of 2 data.path sources cannot keep them consecutive' \
  "$kervan" train --config "$c" --set model.carry_state=true --set "data.path=[\"$work/A\", \"$work/A\"]"
expect_error "carry, too few windows" 'lower train.micro_batch or train.seq_len' \
  "$kervan" train --config "$c" --set model.carry_state=true --set train.micro_batch=4096
expect_error "preset of another family" "model.preset 'lstm-tiny' is a lstm preset" \
  "$kervan" train --config "$work/gru.toml" --set model.preset=lstm-tiny

finish train_recurrent "rnn, lstm, gru train and sample; DP=2 equals one process; carried state resumes bit for bit; 8 mistakes exit 2"
