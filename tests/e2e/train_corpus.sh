#!/usr/bin/env bash
# `kervan train` on kervan corpora: a corpus and a 70/30 blend of two train and log a validation
# loss; the same config twice gives identical losses; DP=2 under mpirun reproduces the
# single-process losses on the blend (to 1e-5 relative, as train_dp.sh); a corrupt, truncated or
# missing shard and other data mistakes stop the run before the first step with exit code 2.
set -uo pipefail
kervan=${1:?usage: train_corpus.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

# Two small corpora of byte tokens (vocabulary 257), documents separated by <|endoftext|> lines.
for i in $(seq 1 60); do
  echo "Document $i talks about rivers and the sea, and the sea again."
  echo "<|endoftext|>"
done > "$work/a.txt"
for i in $(seq 1 40); do
  echo "Record $i: the caravan left the city at dawn with $i camels."
  echo "<|endoftext|>"
done > "$work/b.txt"
"$kervan" prepare --tokenizer bytes --val-documents 4 --out "$work/A" "$work/a.txt" 2>/dev/null || fail "prepare A"
"$kervan" prepare --tokenizer bytes --val-fraction 0 --out "$work/B" "$work/b.txt" 2>/dev/null || fail "prepare B"

cat > "$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 2
d_model = 32
vocab_size = 257
[data]
path = "$work/A"
[train]
steps = 6
micro_batch = 4
seq_len = 32
grad_accum = 2
lr = 3e-3
warmup_steps = 2
threads = 1
eval_every = 3
eval_batches = 2
[sample]
tokens = 20
prompt = "Document"
TOML

"$kervan" train --config "$work/c.toml" --set log.metrics_file="\"$work/a.jsonl\"" >"$work/a.out" 2>"$work/a.err" ||
  fail "train on a corpus: $(tail -3 "$work/a.err")"
[[ $(grep -c '"val_loss"' "$work/a.jsonl") -eq 2 ]] || fail "expected val_loss at steps 2 and 5"
grep -q "tokenizer bytes" "$work/a.out" || fail "the sample was not decoded with the corpus's tokenizer"
grep -q "^Document" "$work/a.out" || fail "the sample does not start with its prompt"
first=$(losses "$work/a.jsonl" | head -1)
last=$(losses "$work/a.jsonl" | tail -1)
awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < f) }' || fail "loss did not fall ($first -> $last)"

blend=(--set "data.path=[\"$work/A\", \"$work/B\"]" --set "data.weights=[0.7, 0.3]")
"$kervan" train --config "$work/c.toml" "${blend[@]}" --set train.micro_batch=8 \
  --set log.metrics_file="\"$work/blend1.jsonl\"" >/dev/null 2>"$work/b.err" || fail "blend: $(tail -3 "$work/b.err")"
"$kervan" train --config "$work/c.toml" "${blend[@]}" --set train.micro_batch=8 \
  --set log.metrics_file="\"$work/blend1b.jsonl\"" >/dev/null 2>&1 || fail "blend again"
cmp -s <(losses "$work/blend1.jsonl") <(losses "$work/blend1b.jsonl") || fail "the same blend twice gave different losses"
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none \
  mpirun -np 2 --oversubscribe "$kervan" train --config "$work/c.toml" "${blend[@]}" \
  --set log.metrics_file="\"$work/blend2.jsonl\"" >/dev/null 2>&1 || fail "blend under DP=2"
same_losses "blend DP=2" "$work/blend1.jsonl" "$work/blend2.jsonl" 6

# With two validation splits, val_loss is their mean weighted like the blend (70/30), and each
# source's own loss is logged too.
"$kervan" prepare --tokenizer bytes --val-documents 4 --out "$work/C" "$work/b.txt" 2>/dev/null || fail "prepare C"
"$kervan" train --config "$work/c.toml" --set "data.path=[\"$work/A\", \"$work/C\"]" --set "data.weights=[0.7, 0.3]" \
  --set log.metrics_file="\"$work/val2.jsonl\"" >/dev/null 2>"$work/v.err" || fail "two validation splits: $(tail -3 "$work/v.err")"
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const evals = lines.filter((l) => "val_loss" in l);
  if (evals.length !== 2) throw new Error("expected 2 evaluations, got " + evals.length);
  for (const e of evals) {
    const per = e.val_losses || {};
    const a = per[process.argv[2] + "/A"], c = per[process.argv[2] + "/C"];
    if (Object.keys(per).length !== 2 || a === undefined || c === undefined)
      throw new Error("expected validation losses of A and C, got " + JSON.stringify(per));
    const mean = 0.7 * a + 0.3 * c;
    if (Math.abs(mean - e.val_loss) > 1e-5 * e.val_loss) throw new Error("val_loss " + e.val_loss + " is not 0.7/0.3 of " + [a, c]);
  }' "$work/val2.jsonl" "$work" || fail "val_loss is not the blend-weighted mean of the per-source losses"

# Damaged corpora are refused before training, naming the shard.
shard=$(cd "$work/A" && ls train-*.kvs | head -1)
cp -r "$work/A" "$work/flip" && printf 'Z' | dd of="$work/flip/$shard" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_error "flipped byte" "flip/$shard: checksum mismatch" "$kervan" train --config "$work/c.toml" --set data.path="\"$work/flip\""
# Under mpirun one rank per node reads and checksums the shards; the others get its verdict.
expect_error "flipped byte, 2 ranks" "flip/$shard: checksum mismatch" \
  env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none \
  mpirun -np 2 --oversubscribe "$kervan" train --config "$work/c.toml" --set data.path="\"$work/flip\""
[[ $(grep -c "checksum mismatch" "$work/err") -ge 1 ]] || fail "flipped byte, 2 ranks: no rank named the damage"
cp -r "$work/A" "$work/cut" && truncate -s -8 "$work/cut/$shard"
expect_error "truncated shard" "cut/$shard: size mismatch" "$kervan" train --config "$work/c.toml" --set data.path="\"$work/cut\""
cp -r "$work/A" "$work/gone" && rm "$work/gone/$shard"
expect_error "missing shard" "gone/$shard: cannot open shard" "$kervan" train --config "$work/c.toml" --set data.path="\"$work/gone\""
mkdir "$work/unfinished"
expect_error "no manifest" "unfinished/manifest.json: cannot open corpus manifest" \
  "$kervan" train --config "$work/c.toml" --set data.path="\"$work/unfinished\""
expect_error "vocabulary" "more than model.vocab_size = 256" "$kervan" train --config "$work/c.toml" --set model.vocab_size=256
expect_error "no val split" "has none (prepare it with --val-fraction" \
  "$kervan" train --config "$work/c.toml" --set data.path="\"$work/B\""
expect_error "weights" "data.weights needs one weight per data.path (2), got 1" \
  "$kervan" train --config "$work/c.toml" --set "data.path=[\"$work/A\", \"$work/B\"]" --set "data.weights=[1.0]"

finish train_corpus "corpora and blends train, DP=2 matches DP=1, damaged corpora exit 2"
