#!/usr/bin/env bash
# The recurrent study (bench/recurrent_study.py) at its test size: GPT, LSTM, GRU and RNN train a few
# steps on a small byte corpus and the JSON has every field, each finite; a missing corpus exits 2.
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
/usr/bin/python3 "$study" --kervan "$kervan" --corpus "$work/A" --out "$work/study.json" --size test --threads 1 \
  >"$work/out" 2>&1 || fail "study: $(tail -5 "$work/out")"
/usr/bin/python3 "$study" --check "$work/study.json" >/dev/null 2>"$work/err" || fail "check: $(cat "$work/err")"
# The check itself fails on a non-finite field.
sed 's/"wall_s": [0-9.e+-]*/"wall_s": NaN/' "$work/study.json" >"$work/bad.json"
/usr/bin/python3 "$study" --check "$work/bad.json" >/dev/null 2>&1 && fail "check accepted a NaN"
expect_error "no corpus" "not a kervan corpus folder" /usr/bin/python3 "$study" --corpus "$work/none" --out "$work/x.json"
finish recurrent_study "gpt, lstm, gru, rnn: every field of the study's JSON present and finite"
