#!/usr/bin/env bash
# kervan plot and kervan sample on real runs: a PNG of the requested size from two metrics files
# (training and validation loss); the same tokens for the same seed from a TP=1 checkpoint and from
# a TP=2 one (mpirun -np 2) of the same training, also sampled under mpirun -np 2 (the model split,
# each rank caching its heads' keys and values); with and without the KV cache, also past the
# model's context; sample.every prints samples during training.
# Bad inputs: a metrics file that is not JSON lines, a folder that is not a checkpoint: exit 2,
# named, the existing PNG untouched.
set -uo pipefail
kervan=${1:?usage: plot_sample.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

for d in $(seq 1 30); do
  for i in $(seq 1 8); do echo "Document $d, line $i: the cat sat on the mat and the dog sat on the log."; done
  echo "<|endoftext|>"
done >"$work/t.txt"
"$kervan" prepare --tokenizer bytes --val-documents 3 --out "$work/corpus" "$work/t.txt" >/dev/null 2>&1 || fail "prepare"
cat >"$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 4
d_model = 32
vocab_size = 257
[data]
path = "$work/corpus"
[train]
steps = 30
micro_batch = 4
seq_len = 32
lr = 3e-3
threads = 1
eval_every = 10
eval_batches = 2
[sample]
tokens = 8
every = 10
prompt = "Document"
TOML
"$kervan" train --config "$work/c.toml" --set "log.metrics_file=$work/tp1.jsonl" --set "checkpoint.dir=$work/tp1" >"$work/tp1.log" 2>&1 ||
  fail "train tp1: $(tail -3 "$work/tp1.log")"
mpirun -np 2 --oversubscribe "$kervan" train --config "$work/c.toml" --set parallel.tp=2 --set "log.metrics_file=$work/tp2.jsonl" \
  --set "checkpoint.dir=$work/tp2" >"$work/tp2.log" 2>&1 || fail "train tp2: $(tail -3 "$work/tp2.log")"
[[ $(grep -c -e "----- sample at step 10 " -e "----- sample at step 20 " "$work/tp1.log") -eq 2 ]] || fail "sample.every: $(grep -- ----- "$work/tp1.log")"
grep -q "^----- sample (8 tokens" "$work/tp1.log" || fail "no sample after training"
grep -q '"val_loss"' "$work/tp1.jsonl" || fail "no val_loss in the metrics"

# Sampling from the checkpoints: 10 prompt tokens + 24 fill the 32-token context after 22 cached
# steps, so the last token recomputes the sliding window.
sample() { "$kervan" sample --tokens 24 --ids "$@" 2>"$work/sample.err" | grep '^ids: '; }
a=$(sample --checkpoint "$work/tp1" --prompt "Document 3" --seed 5 --temperature 0.8)
[[ -n $a ]] || fail "sample from tp1: $(cat "$work/sample.err")"
grep -q "kervan sample: $work/tp1/step_00000030 (step 30, .*), one process: 24 tokens in [0-9.]* s, [0-9.]* tokens/s (prefill: 10 prompt tokens in [0-9.]* s, [0-9]* tokens/s; decode: 23 tokens in [0-9.]* s, [0-9.]* tokens/s with the KV cache; the last 1 recomputed the sliding 32-token window)" "$work/sample.err" ||
  fail "no speed line: $(cat "$work/sample.err")"
[[ $(wc -w <<<"$a") -eq 25 ]] || fail "expected 24 ids: $a"
b=$(sample --checkpoint "$work/tp2" --prompt "Document 3" --seed 5 --temperature 0.8)
[[ $a == "$b" ]] || fail "TP=1 and TP=2 checkpoints sample differently: '$a' vs '$b'"
# Under mpirun -np 2 the ranks split the model (TP=2, each caching its heads' keys and values):
# the tokens of one process, printed once.
mpi_sample() {
  mpirun -np 2 --oversubscribe "$kervan" sample --tokens 24 --ids --threads 1 "$@" >"$work/mpi.out" 2>"$work/mpi.err"
  grep '^ids: ' "$work/mpi.out"
}
m=$(mpi_sample --checkpoint "$work/tp2" --prompt "Document 3" --seed 5 --temperature 0.8)
[[ $a == "$m" ]] || fail "sampling under mpirun -np 2 differs from one process: '$a' vs '$m' ($(tail -2 "$work/mpi.err"))"
[[ $(grep -c '^ids: ' "$work/mpi.out") -eq 1 ]] || fail "mpirun -np 2 printed the sample $(grep -c '^ids: ' "$work/mpi.out") times"
grep -q "), tensor parallel over 2 ranks: 24 tokens in .* with the KV cache; the last 1 recomputed" "$work/mpi.err" || fail "mpirun speed line: $(cat "$work/mpi.err")"
[[ $(mpi_sample --checkpoint "$work/tp1" --prompt "Document 3" --temperature 0) == "$(sample --checkpoint "$work/tp1" --prompt "Document 3" --temperature 0)" ]] ||
  fail "greedy sampling under mpirun -np 2 differs from one process"
# The KV cache gives the tokens of the full recompute, also past the model's 32-token context
# (where every step recomputes the sliding window).
n=$(sample --checkpoint "$work/tp1" --prompt "Document 3" --seed 5 --temperature 0.8 --no-kv-cache)
[[ $a == "$n" ]] || fail "--no-kv-cache sampled differently: '$a' vs '$n'"
grep -q "no KV cache: every token recomputes the context" "$work/sample.err" || fail "--no-kv-cache speed line: $(cat "$work/sample.err")"
long() { "$kervan" sample --checkpoint "$work/tp1" --prompt "Document 3" --tokens 40 --seed 2 --ids "$@" 2>"$work/sample.err" | grep '^ids: '; }
l1=$(long)
grep -q "with the KV cache; the last 17 recomputed the sliding 32-token window" "$work/sample.err" || fail "sliding window line: $(cat "$work/sample.err")"
[[ $l1 == "$(long --no-kv-cache)" ]] || fail "past the context, the cached path sampled differently"
c=$(sample --checkpoint "$work/tp1/step_00000030" --prompt "Document 3" --seed 5 --temperature 0.8)
[[ $a == "$c" ]] || fail "the same seed sampled differently"
d=$(sample --checkpoint "$work/tp1" --prompt "Document 3" --seed 6 --temperature 0.8)
[[ $a != "$d" ]] || fail "another seed sampled the same 24 tokens"
g=$(sample --checkpoint "$work/tp1" --prompt "Document 3" --temperature 0)
p=$(sample --checkpoint "$work/tp1" --prompt "Document 3" --seed 9 --top-p 0.000001)
[[ $g == "$p" ]] || fail "top-p near 0 is not greedy: '$g' vs '$p'"
"$kervan" sample --checkpoint "$work/tp1" --prompt "Document 3" --tokens 24 --temperature 0 2>/dev/null | grep -q '^Document 3' ||
  fail "the text does not start with the prompt"

# The plot.
"$kervan" plot "$work/tp1.jsonl" "$work/tp2.jsonl" -o "$work/loss.png" --size 800x600 >"$work/plot.out" 2>&1 || fail "plot: $(cat "$work/plot.out")"
grep -q "wrote $work/loss.png (800x600): loss (training and validation) against step and tokens and throughput of 2 run(s)" "$work/plot.out" ||
  fail "plot said: $(cat "$work/plot.out")"
[[ $(head -c 8 "$work/loss.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "loss.png is not a PNG"
size=$(od -An -tu1 -j16 -N8 "$work/loss.png" | awk '{ print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8 }')
[[ $size == 800x600 ]] || fail "loss.png is $size, expected 800x600"
(($(stat -c %s "$work/loss.png") > 10000)) || fail "loss.png is suspiciously small"

# Bad inputs.
sum=$(cksum <"$work/loss.png")
{ head -3 "$work/tp1.jsonl"; echo "step 4 loss 2.1"; } >"$work/bad.jsonl"
expect_error "plot of a non-JSON line" "bad.jsonl:4: not JSON" "$kervan" plot "$work/tp1.jsonl" "$work/bad.jsonl" -o "$work/loss.png"
echo '{"loss": 2}' >"$work/nostep.jsonl"
expect_error "plot of JSON without step" "nostep.jsonl:1: not a kervan metrics line" "$kervan" plot "$work/nostep.jsonl" -o "$work/loss.png"
expect_error "plot of a missing file" "$work/none.jsonl" "$kervan" plot "$work/none.jsonl" -o "$work/loss.png"
[[ $(cksum <"$work/loss.png") == "$sum" ]] || fail "a refused plot changed loss.png"
expect_error "plot onto an input" "is one of the inputs" "$kervan" plot "$work/tp1.jsonl" -o "$work/tp1.jsonl"
mkdir "$work/empty"
expect_error "sample from a folder without checkpoints" "$work/empty" "$kervan" sample --checkpoint "$work/empty" --prompt x
expect_error "sample from a missing folder" "$work/nothing" "$kervan" sample --checkpoint "$work/nothing" --prompt x
finish plot_sample "PNG of the requested size; the same tokens from TP=1 and TP=2 checkpoints; bad inputs refused"
