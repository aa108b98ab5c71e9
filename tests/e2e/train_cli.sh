#!/usr/bin/env bash
# End to end through the `kervan` binary: prepare -> train twice (bit-identical losses, loss goes
# down, metrics complete), then every bad input ends with exit code 2 and a message naming the
# file and the problem.
set -uo pipefail
kervan=${1:?usage: train_cli.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

# A small English text (repeated so there is enough for a few hundred windows).
for i in $(seq 1 60); do
  echo "In the beginning was the word, and the word was with the reader, and the reader was patient. $i"
  echo "The quick brown fox jumps over the lazy dog while the cat watches from the warm window sill."
done > "$work/text.txt"
"$kervan" prepare --tokenizer bytes --out "$work/text.bin" "$work/text.txt" || fail "prepare"

cat > "$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 2
d_model = 32
vocab_size = 256
[data]
path = "$work/text.bin"
tokenizer = "bytes"
[train]
steps = 12
micro_batch = 4
seq_len = 32
grad_accum = 2
lr = 3e-3
warmup_steps = 2
threads = 2
[log]
metrics_file = "$work/m1.jsonl"
every = 4
TOML

"$kervan" train --config "$work/c.toml" 2>"$work/log1" || fail "train run 1: $(tail -3 "$work/log1")"
"$kervan" train --config "$work/c.toml" --set log.metrics_file="\"$work/m2.jsonl\"" 2>/dev/null || fail "train run 2"
[[ $(wc -l < "$work/m1.jsonl") -eq 12 ]] || fail "expected 12 metrics lines, got $(wc -l < "$work/m1.jsonl")"
for key in step loss lr grad_norm tokens_per_s mfu; do
  grep -q "\"$key\":" "$work/m1.jsonl" || fail "metrics lack $key"
done
[[ "$(losses "$work/m1.jsonl")" == "$(losses "$work/m2.jsonl")" ]] || fail "same config and seed gave different losses"
first=$(losses "$work/m1.jsonl" | head -1)
last=$(losses "$work/m1.jsonl" | tail -1)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }' || fail "loss did not go down: $first -> $last"
"$kervan" train --config "$work/c.toml" --set train.seed=7 --set log.metrics_file="\"$work/m3.jsonl\"" 2>/dev/null
[[ "$(losses "$work/m1.jsonl")" != "$(losses "$work/m3.jsonl")" ]] || fail "another seed gave identical losses"

head -c 2000 /dev/urandom > "$work/garbage.bin"
cp "$work/text.bin" "$work/trunc.bin" && truncate -s -7 "$work/trunc.bin"
expect_error "unknown key" "unknown key 'train.stepz'" "$kervan" train --config "$work/c.toml" --set train.stepz=3
expect_error "wrong type" "train.steps must be an integer" "$kervan" train --config "$work/c.toml" --set train.steps=1.5
expect_error "heads" "model.n_head (3) does not divide model.d_model (32)" "$kervan" train --config "$work/c.toml" --set model.n_head=3
expect_error "bad magic" "garbage.bin: bad magic" "$kervan" train --config "$work/c.toml" --set data.path="\"$work/garbage.bin\""
expect_error "truncated" "trunc.bin: header announces" "$kervan" train --config "$work/c.toml" --set data.path="\"$work/trunc.bin\""
expect_error "vocab" "is outside the model's vocabulary (model.vocab_size = 100)" "$kervan" train --config "$work/c.toml" --set model.vocab_size=100
expect_error "missing data" "nothere.bin: no such corpus folder or token file" "$kervan" train --config "$work/c.toml" --set data.path="\"$work/nothere.bin\""
expect_error "missing config" "nothere.toml: cannot open config file" "$kervan" train --config "$work/nothere.toml"
expect_error "bad cli" "--config is required" "$kervan" train
expect_error "prepare missing input" "nothere.txt: cannot open input file" "$kervan" prepare --out "$work/p.bin" "$work/nothere.txt"
[[ ! -e "$work/p.bin" && ! -e "$work/p.bin.tmp" ]] || fail "prepare left a file behind after an error"

finish train_cli "all checks passed"
