#!/usr/bin/env bash
# Training health: a step whose gradient is poisoned (KERVAN_TEST_POISON_GRAD, a test hook: the
# backward's loss scale is NaN) is skipped, counted in the metrics, and the run goes on with
# finite losses; train.max_bad_steps poisoned steps in a row stop the run (exit 3) with a
# checkpoint of the last good state, from which a resume logs the clean run's losses bit for bit.
# Also: one line per logging step with elapsed time and ETA, the loss z-score in the metrics, and
# the same under mpirun -np 2 (other ranks log to their own file).
set -uo pipefail
kervan=${1:?usage: train_health.sh path/to/kervan}
work=$(mktemp -d)
trap '[[ -n ${KEEP:-} ]] || rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

small_text 120 "$work/t.txt"
"$kervan" prepare --tokenizer bytes --val-documents 0 --out "$work/corpus" "$work/t.txt" >/dev/null 2>&1 || fail "prepare"
cat >"$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 4
d_model = 32
vocab_size = 257
[data]
path = "$work/corpus"
[train]
steps = 16
micro_batch = 4
seq_len = 32
lr = 1e-3
schedule = "constant"
threads = 1
max_bad_steps = 3
[log]
every = 1
[checkpoint]
every = 6
TOML
run() {  # NAME [args]: a run logging to NAME.jsonl, NAME.log; returns its exit code
  local name=$1
  shift
  "$kervan" train --config "$work/c.toml" --set "log.metrics_file=$work/$name.jsonl" "$@" >"$work/$name.log" 2>&1
}
field() { grep "\"step\":$2," "$1" | grep -o "\"$3\":[^,}]*" | cut -d: -f2; }

run clean --set "checkpoint.dir=$work/clean.ckpt" || fail "clean run: $(tail -3 "$work/clean.log")"
grep -q 'step     3/16 | loss .* | elapsed [0-9]*:[0-9][0-9] | ETA [0-9]*:[0-9][0-9]$' "$work/clean.log" ||
  fail "no elapsed/ETA in the step line: $(grep 'step     3/' "$work/clean.log")"
[[ -n $(field "$work/clean.jsonl" 12 loss_z) ]] || fail "no loss_z in the metrics at step 12"
[[ $(field "$work/clean.jsonl" 15 bad_steps) == 0 ]] || fail "a clean run counts bad steps"

# One poisoned step: skipped, counted, the run goes on.
KERVAN_TEST_POISON_GRAD=5 run one || fail "one bad step stopped the run: $(tail -3 "$work/one.log")"
[[ $(field "$work/one.jsonl" 5 skipped) == true ]] || fail "step 5 is not marked skipped"
[[ $(field "$work/one.jsonl" 4 skipped) == false ]] || fail "step 4 is marked skipped"
[[ $(field "$work/one.jsonl" 15 bad_steps) == 1 ]] || fail "bad_steps at the end: $(field "$work/one.jsonl" 15 bad_steps), expected 1"
grep -q "step 5: the gradient norm is not finite .*update skipped (1 in a row, 1 in this run)" "$work/one.log" ||
  fail "no warning for the skipped step: $(grep -i 'step 5' "$work/one.log")"
losses_match "before the bad step" "$work/clean.jsonl" "$work/one.jsonl" 0 5 0
for s in $(seq 6 15); do
  l=$(field "$work/one.jsonl" "$s" loss)
  awk -v l="$l" 'BEGIN { exit !(l + 0 == l && l > 0 && l < 10) }' || fail "step $s loss after the skip: '$l'"
done
[[ $(field "$work/one.jsonl" 6 loss) != $(field "$work/clean.jsonl" 6 loss) ]] || fail "the skipped update changed nothing downstream?"

# max_bad_steps in a row: exit 3, the last good state saved; resumed, it is the clean run.
KERVAN_TEST_POISON_GRAD=4-30 run many --set "checkpoint.dir=$work/many.ckpt"
rc=$?
[[ $rc -eq 3 ]] || fail "3 bad steps in a row: exit $rc, expected 3: $(tail -3 "$work/many.log")"
grep -q "stopping: 3 steps in a row (4 to 6) had a non-finite loss or gradient norm (train.max_bad_steps = 3); the last good state (after step 3) is saved in $work/many.ckpt/step_00000004" "$work/many.log" ||
  fail "the stop message: $(grep -i stopping "$work/many.log")"
[[ $(cat "$work/many.ckpt/latest") == step_00000004 ]] || fail "latest is $(cat "$work/many.ckpt/latest"), expected step_00000004"
[[ ! -e $work/many.ckpt/step_00000006 ]] || fail "a checkpoint of a bad step was saved"
run many --set "checkpoint.dir=$work/many.ckpt" || fail "resume after the stop: $(tail -3 "$work/many.log")"
grep -q "resumed from $work/many.ckpt/step_00000004: step 4" "$work/many.log" || fail "did not resume from step 4"
losses_match "resumed after bad steps" "$work/clean.jsonl" "$work/many.jsonl" 0 15 0

# Two ranks: the same skip on both (the verdict is global), rank 1 logs to its own file.
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 KERVAN_TEST_POISON_GRAD=5 \
  mpirun -np 2 --oversubscribe "$kervan" train --config "$work/c.toml" --set "log.metrics_file=$work/np2.jsonl" \
  >"$work/np2.log" 2>&1 || fail "np 2 with a bad step: $(tail -3 "$work/np2.log")"
[[ $(field "$work/np2.jsonl" 15 bad_steps) == 1 ]] || fail "np 2: bad_steps $(field "$work/np2.jsonl" 15 bad_steps)"
[[ -s $work/np2.rank1.log ]] || fail "rank 1 has no log file"
grep -q "rank 1 warning step 5: the gradient norm is not finite" "$work/np2.rank1.log" || fail "rank 1's log lacks the skip: $(head -3 "$work/np2.rank1.log")"
[[ $(grep -c "step     3/16" "$work/np2.log") -eq 1 ]] || fail "the terminal has step lines of more than one rank"
finish train_health "a bad step is skipped and counted, 3 in a row stop with the last good state, resume is exact"
