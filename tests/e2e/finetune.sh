#!/usr/bin/env bash
# `kervan finetune` on small labelled sets of byte tokens. classify: BERT and GPT, from scratch,
# reach a validation accuracy clearly above chance (>= 0.9 where chance is 0.5) on a two-class
# task; BERT also from a masked-LM checkpoint of `kervan train` (finetune.init_from), which it
# loads bit for bit with a new head; fine-tuning checkpoints resume bit for bit after SIGKILL.
# text2text: GPT learns to upper-case words (exact match >= 0.5), T5 trains (its loss falls).
# DP=2 equals DP=1. Bad lines, labels outside the set, checkpoints of another family or shape and
# keys of the other command exit 2 with one message each.
set -uo pipefail
kervan=${1:?usage: finetune.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
mpi=(mpirun -np 2 --oversubscribe)

# Two classes told apart by their first word; three filler words after it, drawn from a fixed list.
words=(the a of to in and with for on at by from river stone cloud paper tree house green blue)
examples() {  # examples N SEED
  RANDOM=$2
  for ((i = 0; i < $1; i++)); do
    if ((RANDOM % 2)); then first=sunny; label=good; else first=rainy; label=bad; fi
    echo "{\"text\": \"$first ${words[RANDOM % 20]} ${words[RANDOM % 20]} ${words[RANDOM % 20]}\", \"label\": \"$label\"}"
  done
}
examples 320 1 > "$work/train.jsonl"
examples 100 2 > "$work/val.jsonl"
for ((i = 0; i < 300; i++)); do
  w=$(tr -dc 'a-h' < /dev/urandom | head -c $((2 + i % 3)))
  echo "{\"input\": \"$w\", \"target\": \"${w^^}\"}"
done > "$work/all2.jsonl"
head -250 "$work/all2.jsonl" > "$work/t2t_train.jsonl"
tail -50 "$work/all2.jsonl" > "$work/t2t_val.jsonl"

cat > "$work/cls.toml" <<TOML
[model]
arch = "bert"
n_layer = 2
n_head = 2
d_model = 32
vocab_size = 261
max_seq_len = 32
[data]
tokenizer = "bytes"
[finetune]
task = "classify"
train = "$work/train.jsonl"
val = "$work/val.jsonl"
[train]
steps = 60
micro_batch = 16
seq_len = 32
lr = 3e-3
warmup_steps = 5
threads = 1
TOML
accuracy() { grep -o '"val_accuracy":[^,}]*' "$1" | tail -1 | cut -d: -f2; }
at_least() { awk -v a="$2" -v b="$3" 'BEGIN { exit !(a >= b) }' || fail "$1: $2 < $3"; }

"$kervan" finetune --config "$work/cls.toml" --set log.metrics_file="\"$work/bert.jsonl\"" >/dev/null 2>"$work/err" ||
  fail "bert classify: $(tail -3 "$work/err")"
at_least "bert accuracy" "$(accuracy "$work/bert.jsonl")" 0.9
grep -q '"val_precision":{"bad":' "$work/bert.jsonl" || fail "bert: no per-class precision in the metrics"
"$kervan" finetune --config "$work/cls.toml" --set model.arch='"gpt"' --set model.vocab_size=257 \
  --set log.metrics_file="\"$work/gpt.jsonl\"" >/dev/null 2>"$work/err" || fail "gpt classify: $(tail -3 "$work/err")"
at_least "gpt accuracy" "$(accuracy "$work/gpt.jsonl")" 0.9

# Pretraining with `kervan train` (masked LM, a checkpoint), then fine-tuning from its weights
# (finetune.init_from): the new head is the only tensor not taken from the checkpoint.
for i in $(seq 1 60); do echo "the river and the stone, a cloud over the tree number $i"; echo "<|endoftext|>"; done > "$work/c.txt"
"$kervan" prepare --tokenizer bytes --val-fraction 0 --out "$work/C" "$work/c.txt" 2>/dev/null || fail prepare
cat > "$work/pre.toml" <<TOML
[model]
arch = "bert"
n_layer = 2
n_head = 2
d_model = 32
vocab_size = 261
max_seq_len = 32
[data]
path = "$work/C"
[train]
steps = 10
micro_batch = 8
seq_len = 32
lr = 3e-3
threads = 1
[checkpoint]
dir = "$work/pre.ckpt"
TOML
"$kervan" train --config "$work/pre.toml" >/dev/null 2>"$work/err" || fail "pretrain: $(tail -3 "$work/err")"
[[ $(cat "$work/pre.ckpt/latest" 2>/dev/null) == step_00000010 ]] || fail "pretraining saved no step_00000010"
"$kervan" finetune --config "$work/cls.toml" --set finetune.init_from="\"$work/pre.ckpt\"" \
  --set log.metrics_file="\"$work/pre-bert.jsonl\"" >/dev/null 2>"$work/err" || fail "finetune from the checkpoint: $(tail -3 "$work/err")"
grep -q "starting from the model weights of $work/pre.ckpt/step_00000010 (finetune.init_from), fresh optimizer, step 0; new, from their initialisation: model/cls.pooler.weight, model/cls.pooler.bias, model/cls.classifier.weight, model/cls.classifier.bias" "$work/err" ||
  fail "pretrained weights were not taken: $(grep -i "starting from" "$work/err" | tail -2)"
at_least "pretrained bert accuracy" "$(accuracy "$work/pre-bert.jsonl")" 0.9

# The weights arrive bit for bit: one step at a learning rate too small to move an fp32 weight
# (1e-30), saved, holds every tensor of the pretrained encoder with the pretrained checksum.
"$kervan" finetune --config "$work/cls.toml" --set finetune.init_from="\"$work/pre.ckpt/step_00000010\"" \
  --set train.steps=1 --set train.lr=1e-30 --set train.warmup_steps=0 --set checkpoint.dir="\"$work/ft1.ckpt\"" \
  >/dev/null 2>"$work/err" || fail "one-step finetune: $(tail -3 "$work/err")"
python3 - "$work/pre.ckpt/step_00000010/manifest.json" "$work/ft1.ckpt/step_00000001/manifest.json" <<'PY' || fail "weights not loaded bit for bit"
import json, sys
pre, ft = ({t["name"]: t["xxh3"] for t in json.load(open(f))["tensors"] if t["name"].startswith("model/")} for f in sys.argv[1:])
shared = [n for n in ft if n in pre]
bad = [n for n in shared if pre[n] != ft[n]]
new = sorted(n for n in ft if n not in pre)
ok = len(shared) >= 20 and not bad and all(n.startswith("model/cls.") for n in new) and len(new) == 4
print(f"{len(shared)} tensors shared, {len(bad)} differ: {bad[:3]}; new: {new}")
sys.exit(0 if ok else 1)
PY

# Fine-tuning saves and resumes like training: killed before step 7 (checkpoints every 3 steps),
# started again, it logs every step with the straight run's loss, bit for bit.
ck=(--set finetune.init_from="\"$work/pre.ckpt\"" --set train.steps=10 --set checkpoint.every=3 --set checkpoint.async=false)
"$kervan" finetune --config "$work/cls.toml" "${ck[@]}" --set checkpoint.dir="\"$work/fs.ckpt\"" \
  --set log.metrics_file="\"$work/fs.jsonl\"" >/dev/null 2>&1 || fail "straight finetune"
KERVAN_FAILPOINT=train_step@7 bash -c '"$@"; exit $?' - "$kervan" finetune --config "$work/cls.toml" "${ck[@]}" \
  --set checkpoint.dir="\"$work/fk.ckpt\"" --set log.metrics_file="\"$work/fk.jsonl\"" >/dev/null 2>&1
"$kervan" finetune --config "$work/cls.toml" "${ck[@]}" --set checkpoint.dir="\"$work/fk.ckpt\"" \
  --set log.metrics_file="\"$work/fk.jsonl\"" >/dev/null 2>"$work/err" || fail "resumed finetune: $(tail -3 "$work/err")"
grep -q "resumed from $work/fk.ckpt/step_00000006: step 6" "$work/err" || fail "finetune did not resume: $(grep -i resum "$work/err")"
losses_match "finetune resume" "$work/fs.jsonl" "$work/fk.jsonl" 0 9 0

# DP=2 equals one process (the same global batch of 16).
"$kervan" finetune --config "$work/cls.toml" --set train.steps=6 --set log.metrics_file="\"$work/dp1.jsonl\"" >/dev/null 2>&1 ||
  fail "dp1"
"${mpi[@]}" "$kervan" finetune --config "$work/cls.toml" --set train.steps=6 --set train.micro_batch=8 \
  --set log.metrics_file="\"$work/dp2.jsonl\"" >/dev/null 2>"$work/err" || fail "dp2: $(tail -3 "$work/err")"
same_losses "finetune dp2" "$work/dp1.jsonl" "$work/dp2.jsonl" 6

cat > "$work/t2t.toml" <<TOML
[model]
arch = "gpt"
n_layer = 2
n_head = 2
d_model = 64
vocab_size = 257
[data]
tokenizer = "bytes"
[finetune]
task = "text2text"
train = "$work/t2t_train.jsonl"
val = "$work/t2t_val.jsonl"
max_target_len = 6
show = 1
[train]
steps = 150
micro_batch = 16
seq_len = 16
lr = 3e-3
warmup_steps = 10
threads = 1
TOML
"$kervan" finetune --config "$work/t2t.toml" --set log.metrics_file="\"$work/gpt-t2t.jsonl\"" >/dev/null 2>"$work/err" ||
  fail "gpt text2text: $(tail -3 "$work/err")"
at_least "gpt exact match" "$(grep -o '"val_exact_match":[^,}]*' "$work/gpt-t2t.jsonl" | cut -d: -f2)" 0.5
grep -q "    output: " "$work/err" || fail "gpt text2text: no generated output shown"
"$kervan" finetune --config "$work/t2t.toml" --set model.arch='"t5"' --set model.vocab_size=358 --set train.steps=40 \
  --set log.metrics_file="\"$work/t5.jsonl\"" >/dev/null 2>"$work/err" || fail "t5 text2text: $(tail -3 "$work/err")"
first=$(losses "$work/t5.jsonl" | head -1)
last=$(losses "$work/t5.jsonl" | tail -1)
awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < f) }' || fail "t5: loss did not fall ($first -> $last)"

# Bad input: one clear message each, exit code 2.
{ head -2 "$work/train.jsonl"; echo "not json"; tail -n +3 "$work/train.jsonl"; } > "$work/bad.jsonl"
expect_error "a line that is not JSON" "$work/bad.jsonl:3: not valid JSON (a syntax error, or a number out of range) (--skip-bad-lines skips such lines)" \
  "$kervan" finetune --config "$work/cls.toml" --set finetune.train="\"$work/bad.jsonl\""
"$kervan" finetune --config "$work/cls.toml" --set finetune.train="\"$work/bad.jsonl\"" --set train.steps=2 --set train.warmup_steps=0 \
  --skip-bad-lines >/dev/null 2>"$work/err" || fail "--skip-bad-lines: $(tail -2 "$work/err")"
grep -q "1 bad lines skipped" "$work/err" || fail "--skip-bad-lines did not count the bad line"
echo '{"text": "sunny day"}' > "$work/nolabel.jsonl"
expect_error "a line without its label" "$work/nolabel.jsonl:1: no string or integer field \"label\"" \
  "$kervan" finetune --config "$work/cls.toml" --set finetune.train="\"$work/nolabel.jsonl\""
{ head -1 "$work/val.jsonl"; echo '{"text": "sunny sky", "label": "maybe"}'; } > "$work/badlabel.jsonl"
expect_error "a label outside the set" "$work/badlabel.jsonl:2: label 'maybe' is not one of the labels (bad, good)" \
  "$kervan" finetune --config "$work/cls.toml" --set finetune.val="\"$work/badlabel.jsonl\""
expect_error "a label outside finetune.labels" "label 'good' is not one of the labels (bad, fine), finetune.labels" \
  "$kervan" finetune --config "$work/cls.toml" --set 'finetune.labels=["bad", "fine"]'
"$kervan" train --config "$work/pre.toml" --set model.arch='"gpt"' --set model.vocab_size=257 --set train.steps=1 \
  --set checkpoint.dir="\"$work/gpt.ckpt\"" >/dev/null 2>&1 || fail "gpt pretraining"
expect_error "a checkpoint of another family" "finetune.init_from $work/gpt.ckpt/step_00000001 holds a gpt model, but model.arch is \"bert\"" \
  "$kervan" finetune --config "$work/cls.toml" --set finetune.init_from="\"$work/gpt.ckpt\""
expect_error "a checkpoint of another shape" "holds a bert model with model.n_layer = 2, but this config has 1" \
  "$kervan" finetune --config "$work/cls.toml" --set model.n_layer=1 --set finetune.init_from="\"$work/pre.ckpt\""
expect_error "no checkpoint there" "finetune.init_from: no such checkpoint '$work/nothing'" \
  "$kervan" finetune --config "$work/cls.toml" --set finetune.init_from="\"$work/nothing\""
expect_error "checkpoint.init_from in kervan finetune" "kervan finetune starts from a checkpoint's weights with finetune.init_from" \
  "$kervan" finetune --config "$work/cls.toml" --set checkpoint.init_from="\"$work/pre.ckpt\""
expect_error "no room for the special tokens" "model.vocab_size (258) has no room for BERT's 4 special tokens" \
  "$kervan" finetune --config "$work/cls.toml" --set model.vocab_size=258
expect_error "classify with T5" "finetune.task = \"classify\" takes BERT or GPT" \
  "$kervan" finetune --config "$work/cls.toml" --set model.arch='"t5"' --set model.vocab_size=358
expect_error "finetune keys in kervan train" "finetune.task is read by kervan finetune, not kervan train" \
  "$kervan" train --config "$work/cls.toml" --set data.path="\"$work/C\""
expect_error "data.path in kervan finetune" "data.path is read by kervan train, not kervan finetune" \
  "$kervan" finetune --config "$work/cls.toml" --set data.path="\"$work/C\""

finish finetune "classify above chance (BERT, GPT, BERT from a checkpoint), init_from exact, resume exact, text2text learns, DP=2 matches, bad input exits 2"
