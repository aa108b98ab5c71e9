#!/usr/bin/env bash
# `kervan train` for BERT and T5 on a kervan corpus of byte tokens (vocabulary 257, end of text
# 256): each trains with its objective (the loss falls; the metrics count the predicted positions:
# round(15% of 30) = 5 per BERT sequence, the 8 span-corruption targets per T5 sequence), whole-word
# masking runs, and under mpirun DP=2, TP=2 and ZeRO-1 reproduce the single-process losses (to 1e-5
# relative). Family mistakes stop before the first step with exit code 2 and one message each.
set -uo pipefail
kervan=${1:?usage: train_families.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
mpi=(mpirun -np 2 --oversubscribe)

for i in $(seq 1 80); do
  echo "Document $i talks about rivers and the sea, and the sea again, said sailor number $i."
  echo "<|endoftext|>"
done > "$work/a.txt"
"$kervan" prepare --tokenizer bytes --val-documents 4 --out "$work/A" "$work/a.txt" 2>/dev/null || fail "prepare"
"$kervan" prepare --tokenizer bytes --out "$work/a.bin" "$work/a.txt" 2>/dev/null || fail "prepare llm.c"

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
steps = 12
micro_batch = 4
seq_len = 32
grad_accum = 2
lr = 3e-3
warmup_steps = 2
threads = 1
eval_every = 6
eval_batches = 2
[parallel]
bucket_mb = 0.01
TOML
}
config bert 261 > "$work/bert.toml"  # 257 byte tokens + [PAD] [CLS] [SEP] [MASK]
config t5 358 > "$work/t5.toml"      # 257 + [PAD] + 100 sentinels

for arch in bert t5; do
  c="$work/$arch.toml"
  "$kervan" train --config "$c" --set train.micro_batch=8 --set log.metrics_file="\"$work/$arch-1.jsonl\"" \
    >/dev/null 2>"$work/err" || fail "$arch: $(tail -3 "$work/err")"
  first=$(losses "$work/$arch-1.jsonl" | head -1)
  last=$(losses "$work/$arch-1.jsonl" | tail -1)
  awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < f) }' || fail "$arch: loss did not fall ($first -> $last)"
  [[ $(grep -c '"val_loss"' "$work/$arch-1.jsonl") -eq 2 ]] || fail "$arch: expected two validation losses"
  want=$([[ $arch == bert ]] && echo 80 || echo 128)  # 16 sequences x 5 masked, or x 8 targets
  grep -q "\"predicted\":$want," "$work/$arch-1.jsonl" || fail "$arch: expected $want predicted positions per step"
  "${mpi[@]}" "$kervan" train --config "$c" --set log.metrics_file="\"$work/$arch-dp2.jsonl\"" >/dev/null 2>&1 ||
    fail "$arch dp2"
  "${mpi[@]}" "$kervan" train --config "$c" --set parallel.zero=1 \
    --set log.metrics_file="\"$work/$arch-z1.jsonl\"" >/dev/null 2>&1 || fail "$arch zero1"
  "${mpi[@]}" "$kervan" train --config "$c" --set train.micro_batch=8 --set parallel.tp=2 \
    --set log.metrics_file="\"$work/$arch-tp2.jsonl\"" >/dev/null 2>&1 || fail "$arch tp2"
  for run in dp2 z1 tp2; do same_losses "$arch $run" "$work/$arch-1.jsonl" "$work/$arch-$run.jsonl" 12; done
done
"$kervan" train --config "$work/bert.toml" --set data.whole_word_masking=1 >/dev/null 2>"$work/err" ||
  fail "whole-word masking: $(tail -3 "$work/err")"

expect_error "no room for the special tokens" "model.vocab_size (260) has no room for BERT's 4 special tokens after the tokenizer's 257 ids" \
  "$kervan" train --config "$work/bert.toml" --set model.vocab_size=260
expect_error "no room for the sentinels" "has no room for T5's 101 special tokens" \
  "$kervan" train --config "$work/t5.toml" --set model.vocab_size=300
expect_error "t5_ffn on a GPT" "model.t5_ffn applies to T5 only, and model.arch is \"gpt\"" \
  "$kervan" train --config "$work/bert.toml" --set model.arch='"gpt"' --set model.t5_ffn='"gated-gelu"'
expect_error "whole-word masking on T5" "data.whole_word_masking applies to BERT only" \
  "$kervan" train --config "$work/t5.toml" --set data.whole_word_masking=1
expect_error "preset of another family" "model.preset 'bert-base' is a bert preset, but model.arch is \"t5\"" \
  "$kervan" train --config "$work/t5.toml" --set model.preset='"bert-base"'
expect_error "unknown family" "model.arch must be \"gpt\", \"bert\", \"t5\", \"rnn\", \"lstm\" or \"gru\", got \"mamba\"" \
  "$kervan" train --config "$work/t5.toml" --set model.arch='"mamba"'
expect_error "bad t5_ffn" "model.t5_ffn must be \"relu\" or \"gated-gelu\", got \"swish\"" \
  "$kervan" train --config "$work/t5.toml" --set model.t5_ffn='"swish"'
expect_error "T5 positions" "model.max_seq_len does not apply to T5" \
  "$kervan" train --config "$work/t5.toml" --set model.max_seq_len=64
expect_error "sampling BERT" "sample.tokens: only GPT and the recurrent families generate text after training" \
  "$kervan" train --config "$work/bert.toml" --set sample.tokens=5
expect_error "llm.c file for BERT" "an llm.c token file does not name its tokenizer" \
  "$kervan" train --config "$work/bert.toml" --set data.path="\"$work/a.bin\""

finish train_families "BERT and T5 train, DP/TP/ZeRO-1 match one process, family mistakes exit 2"
