#!/usr/bin/env bash
# kervan train --dry-run: the resolved config with the origin of every value, the plan, and the
# memory estimate against what a real run of the same config holds at its peak (VmHWM, logged at
# the end of training), at three model sizes: within 15%. Bad inputs: a world size parallel.tp
# does not divide, a run that cannot fit, a missing corpus; each exits 2 before any compute.
set -uo pipefail
kervan=${1:?usage: train_plan.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

small_text 400 "$work/t.txt"
"$kervan" prepare --tokenizer bytes --val-documents 0 --out "$work/corpus" "$work/t.txt" >/dev/null 2>&1 || fail "prepare"
cat >"$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 4
d_model = 64
vocab_size = 257
[data]
path = "$work/corpus"
[train]
steps = 2
micro_batch = 4
seq_len = 64
threads = 1
TOML

# The resolved config: every key once, with its origin.
"$kervan" train --config "$work/c.toml" --dry-run --set train.seed=7 >"$work/plan" 2>"$work/err" || fail "dry run: $(cat "$work/err")"
grep -qx 'model.d_model = 64  # file' "$work/plan" || fail "d_model from the file: $(grep d_model "$work/plan")"
grep -qx 'train.seed = 7  # --set' "$work/plan" || fail "seed from --set: $(grep seed "$work/plan")"
grep -qx 'train.lr = 6e-04  # default' "$work/plan" || fail "lr by default: $(grep 'train.lr' "$work/plan")"
keys=$("$kervan" config keys | grep -c '^| [a-z0-9_]*\.[a-z0-9_]* |')
[[ $(grep -c '  # \(default\|file\|--set\)$' "$work/plan") -eq $keys ]] || fail "the dry run does not list all $keys keys"
grep -q '^layout: world 1 = DP 1 x TP 1, ZeRO-0' "$work/plan" || fail "layout: $(grep layout "$work/plan")"
grep -q '^tokens per step: 256 ' "$work/plan" || fail "tokens per step: $(grep tokens "$work/plan")"
grep -q "^source $work/corpus: [0-9]* windows .*steps per epoch" "$work/plan" || fail "steps per epoch: $(grep source "$work/plan")"
grep -q '^memory on this node: 1 rank(s) .*: fits$' "$work/plan" || fail "memory line: $(grep memory "$work/plan")"
"$kervan" train --config "$work/c.toml" --dry-run --world 4 --set parallel.tp=2 --set parallel.zero=1 >"$work/plan4" 2>&1 || fail "dry run world 4"
grep -q '^layout: world 4 = DP 2 x TP 2, ZeRO-1, 4 rank(s) per node' "$work/plan4" || fail "layout 4: $(grep layout "$work/plan4")"
grep -q '^tokens per step: 512 ' "$work/plan4" || fail "tokens per step at DP 2: $(grep tokens "$work/plan4")"
[[ -z $(ls "$work" | grep -v -e corpus -e t.txt -e c.toml -e plan -e err) ]] || fail "the dry run wrote files: $(ls "$work")"
"$kervan" train --config "$work/c.toml" --dry-run --set "checkpoint.dir=$work/ckpt" >"$work/plan" 2>&1 || fail "dry run with a checkpoint.dir"
[[ ! -e $work/ckpt ]] || fail "the dry run made the checkpoint folder"

# The estimate against the peak of real runs (2 steps, one thread), three sizes.
# (configs/demo.toml, GPT-2 vocabulary, 2 threads, measured by hand on 2026-12-02: planned 0.36 GB,
# peak 0.398 GB; with its async checkpoints 0.50 vs 0.551 GB.)
gb() { grep -o "$2" "$1" | grep -o '[0-9.]*' | tail -1; }
# The fourth saves an (asynchronous) checkpoint: the plan counts its host copy of the state.
for size in "6 384 6 128" "8 512 8 128" "12 768 12 64" "8 512 8 128 ckpt"; do
  read -r layers width heads seq ckpt <<<"$size"
  set=(--set model.n_layer=$layers --set model.d_model=$width --set model.n_head=$heads --set train.seq_len=$seq)
  [[ -n $ckpt ]] && set+=(--set "checkpoint.dir=$work/ckpt")
  "$kervan" train --config "$work/c.toml" --dry-run "${set[@]}" >"$work/p" 2>&1 || fail "dry run $size"
  planned=$(gb "$work/p" 'memory per rank: .* GB in all')
  "$kervan" train --config "$work/c.toml" "${set[@]}" >"$work/log" 2>&1 || fail "run $size: $(tail -3 "$work/log")"
  peak=$(gb "$work/log" 'peak resident memory of this rank: [0-9.]* GB')
  echo "n_layer $layers d_model $width seq_len $seq ${ckpt:-}: planned $planned GB, peak $peak GB"
  awk -v p="$planned" -v m="$peak" 'BEGIN { d = (p - m) / m; if (d < 0) d = -d; exit !(m > 0 && d <= 0.15) }' ||
    fail "n_layer $layers d_model $width: the plan ($planned GB) is not within 15% of the peak ($peak GB)"
done

# The ready configs of configs/ are valid: planned on this corpus (GPT-2 small fits 2 ranks here;
# a bigger one either fits or is refused with the numbers).
for f in "$(dirname "$0")"/../../configs/gpt2-*-cpu.toml; do
  "$kervan" train --config "$f" --dry-run --world 2 --set "data.path=$work/corpus" --set train.eval_every=0 >"$work/p" 2>"$work/err"
  rc=$?
  [[ $rc -eq 0 || ($rc -eq 2 && $(grep -c "this run needs" "$work/err") -eq 1) ]] || fail "$f: exit $rc: $(cat "$work/err")"
  [[ $f != *small* || $rc -eq 0 ]] || fail "$f: gpt2-small does not fit 2 ranks: $(cat "$work/err")"
done

# The GPU configs plan the GPU apart from the host (attention keeps no [T, T] matrix there); this
# machine has no GPU to compare with, which the plan says rather than refusing.
for f in "$(dirname "$0")"/../../configs/gpt2-*-gpu.toml; do
  "$kervan" train --config "$f" --dry-run --set "data.path=$work/corpus" --set train.eval_every=0 >"$work/p" 2>"$work/err" ||
    fail "$f: exit $?: $(cat "$work/err")"
  grep -q '^memory per rank: on the GPU weights .* GB in all, and the CUDA context about [0-9.]* GB (an estimate); on the host .* GB in all$' "$work/p" ||
    fail "$f: $(grep 'memory per rank' "$work/p")"
  if ! nvidia-smi -L >/dev/null 2>&1; then
    grep -q '^memory on each GPU: [0-9.]* GB per rank; not compared (no CUDA device: ' "$work/p" ||
      fail "$f: $(grep 'memory on each GPU' "$work/p")"
  fi
done

# Planning for another machine's card: the issue's bar, gpt2-medium at micro-batch 16 and seq 1024
# in 80 GB, with the context counted; a card too small is refused with the numbers.
medium=("$kervan" train --config "$(dirname "$0")/../../configs/gpt2-medium-gpu.toml" --dry-run
  --set "data.path=$work/corpus" --set train.eval_every=0 --set train.micro_batch=16)
"${medium[@]}" --gpu-memory 80 >"$work/p" 2>"$work/err" || fail "gpt2-medium in 80 GB: $(cat "$work/err")"
grep -q '^memory on each GPU: [0-9.]* GB per rank with the CUDA context, of 80.00 GB (--gpu-memory): fits$' "$work/p" ||
  fail "gpt2-medium in 80 GB: $(grep 'memory on each GPU' "$work/p")"
expect_error "a GPU too small" "more than the 8.00 GB of --gpu-memory" "${medium[@]}" --gpu-memory 8
expect_error "--gpu-memory for a CPU run" "--gpu-memory plans a GPU run" "$kervan" train --config "$work/c.toml" --dry-run --gpu-memory 80
expect_error "--gpu-memory without --dry-run" "go with --dry-run" "$kervan" train --config "$work/c.toml" --gpu-memory 80

# Bad inputs, before any compute: nothing written.
expect_error "tp does not divide" "parallel.tp (2) does not divide" "$kervan" train --config "$work/c.toml" --dry-run --world 3 --set parallel.tp=2
expect_error "cannot fit" "this run needs" "$kervan" train --config "$work/c.toml" --dry-run --set model.n_layer=48 --set model.d_model=4096 --set model.n_head=32
grep -q "activations" "$work/err" || fail "the refusal does not give the numbers: $(cat "$work/err")"
expect_error "no corpus" "$work/none" "$kervan" train --config "$work/c.toml" --dry-run --set data.path=$work/none
expect_error "world without dry run" "go with --dry-run" "$kervan" train --config "$work/c.toml" --world 2
finish train_plan "dry run, plan and memory estimate within 15% at three sizes"
