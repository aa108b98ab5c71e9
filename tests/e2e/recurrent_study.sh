#!/usr/bin/env bash
# The recurrent study (`kervan study recurrent`, bench/recurrent_study.py) at a tiny size: GPT, LSTM,
# GRU and RNN train a few steps on a small byte corpus, their gradient norms through time are
# measured at initialisation and after training, the long-dependency probe trains and scores them
# at two distances, and the JSON has every field, each finite, and the three plots exist. The check
# itself fails on a NaN; a study config without a corpus (or with a bad key) exits 2; the
# measuring commands refuse a run config whose corpus has no validation split.
set -uo pipefail
kervan=${1:?usage: recurrent_study.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
study="$(dirname "$0")/../../bench/recurrent_study.py"

for i in $(seq 1 60); do
  echo "Document $i: the river meets the sea at number $i, and the tide turns."
  echo "<|endoftext|>"
done >"$work/a.txt"
"$kervan" prepare --tokenizer bytes --val-documents 6 --out "$work/A" "$work/a.txt" 2>/dev/null || fail "prepare"
cat >"$work/study.toml" <<EOF
[study]
corpus = "$work/A"
out = "$work/result"
threads = 1
d_model = 16
n_head = 2
steps = 4
micro_batch = 2
seq_len = 16
eval_every = 2
eval_batches = 1
grad_batches = 2
[study.probe]
distances = [2, 4]
train_documents = 16
val_documents = 4
steps = 2
micro_batch = 2
EOF
"$kervan" study recurrent --config "$work/study.toml" >"$work/log" 2>&1 || fail "study: $(tail -5 "$work/log")"
/usr/bin/python3 "$study" --check "$work/result/study.json" >/dev/null 2>"$work/err" || fail "check: $(cat "$work/err")"
for png in loss grad-norms probe; do
  [[ -s "$work/result/$png.png" ]] || fail "no $png.png"
done
grep -q '"norms": \[' "$work/result/study.json" || fail "no gradient norms in the JSON"
# The check itself fails on a non-finite field.
sed 's/"far_over_near": [0-9.e+-]*/"far_over_near": NaN/' "$work/result/study.json" >"$work/bad.json"
/usr/bin/python3 "$study" --check "$work/bad.json" >/dev/null 2>&1 && fail "check accepted a NaN"

# Bad input: exit 2 and a message naming what is wrong.
grep -v '^corpus' "$work/study.toml" >"$work/nocorpus.toml"
expect_error "no corpus" "study.corpus is not set" "$kervan" study recurrent --config "$work/nocorpus.toml"
sed "s|^corpus = .*|corpus = \"$work/none\"|" "$work/study.toml" >"$work/missing.toml"
expect_error "missing corpus" "not a kervan corpus folder" "$kervan" study recurrent --config "$work/missing.toml"
sed 's/^steps = 4/stepz = 4/' "$work/study.toml" >"$work/typo.toml"
expect_error "unknown key" "study.stepz: unknown key" "$kervan" study recurrent --config "$work/typo.toml"
expect_error "no config" "no such file" "$kervan" study recurrent --config "$work/none.toml"
"$kervan" prepare --tokenizer bytes --out "$work/B" "$work/a.txt" 2>/dev/null || fail "prepare B"
sed "s|$work/A|$work/B|; /^eval_/d" "$work/result/runs/gpt/run.toml" >"$work/noval.toml"
expect_error "no val split" "validation split" "$kervan" study grad-norms --config "$work/noval.toml"
finish recurrent_study "gpt, lstm, gru, rnn: speed, loss, gradient norms and the probe; every field present and finite"
