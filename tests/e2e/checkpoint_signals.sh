#!/usr/bin/env bash
# Signals and the folder lock. A DP=2 run (np 2) gets SIGTERM on one rank: both ranks agree on a
# step boundary, save, and exit 0 with a line saying where; resumed, it logs the straight run's
# losses bit for bit. While it runs, a second job on the same checkpoint.dir is refused (exit 2,
# naming the holder). SIGUSR1 stops a single process the same way. A second SIGINT ends the
# process at once (exit 130) and leaves the checkpoints before it intact.
set -uo pipefail
kervan=${1:?usage: checkpoint_signals.sh path/to/kervan}
work=$(mktemp -d)
pids=()
trap 'kill -KILL "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

small_text 80 "$work/t.txt"
"$kervan" prepare --tokenizer bytes --out "$work/t.bin" "$work/t.txt" 2>/dev/null || fail "prepare"
# A constant learning rate: a run stopped early and one of fewer steps follow the same schedule.
cat >"$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 4
d_model = 32
vocab_size = 256
[data]
path = "$work/t.bin"
[train]
steps = 100000
micro_batch = 4
seq_len = 32
lr = 1e-3
schedule = "constant"
threads = 1
[checkpoint]
every = 50
TOML
logged_steps() {
  local n
  n=$(grep -c '"step"' "$1" 2>/dev/null)
  echo "${n:-0}"
}
wait_for_steps() {  # FILE N: until FILE logs N steps (at most 60 s)
  for _ in $(seq 1 600); do
    (($(logged_steps "$1") >= $2)) && return 0
    sleep 0.1
  done
  return 1
}

# SIGTERM to one rank of two.
mpirun -np 2 --oversubscribe "$kervan" train --config "$work/c.toml" --set "checkpoint.dir=\"$work/term\"" \
  --set "log.metrics_file=\"$work/term.jsonl\"" >"$work/term.out" 2>&1 &
mpirun_pid=$!
pids+=("$mpirun_pid")
wait_for_steps "$work/term.jsonl" 5 || fail "the np 2 run logs no steps"
expect_error "second job on the folder" "checkpoint.dir: '$work/term' is in use by another job (pid" \
  "$kervan" train --config "$work/c.toml" --set "checkpoint.dir=\"$work/term\"" --set train.steps=3
rank=$(pgrep -P "$mpirun_pid" -f "kervan train" | tail -1)
kill -TERM "$rank"
wait "$mpirun_pid"
rc=$?
[[ $rc -eq 0 ]] || fail "SIGTERM: exit $rc, expected 0: $(tail -3 "$work/term.out")"
line=$(grep -o "stopped by SIGTERM after step [0-9]*: checkpoint saved to $work/term/step_[0-9]*" "$work/term.out")
[[ -n $line ]] || fail "no line saying where it saved: $(tail -3 "$work/term.out")"
stopped=${line##*step_}
stopped=$((10#$stopped))
[[ $(cat "$work/term/latest") == $(printf 'step_%08d' "$stopped") ]] || fail "latest is not the stop checkpoint"
"$kervan" ckpt verify "$work/term" >/dev/null || fail "the stop checkpoint does not verify"
# Resumed to three steps past the stop, against a straight run of as many steps.
end=$((stopped + 3))
mpirun -np 2 --oversubscribe "$kervan" train --config "$work/c.toml" --set train.steps=$end \
  --set "checkpoint.dir=\"$work/term\"" --set "log.metrics_file=\"$work/term.jsonl\"" >/dev/null 2>&1 || fail "resume after SIGTERM"
mpirun -np 2 --oversubscribe "$kervan" train --config "$work/c.toml" --set train.steps=$end \
  --set "checkpoint.dir=\"$work/straight\"" --set "log.metrics_file=\"$work/straight.jsonl\"" >/dev/null 2>&1 || fail "straight"
losses_match sigterm "$work/straight.jsonl" "$work/term.jsonl" 0 $((end - 1)) 0

# SIGUSR1 (Slurm's --signal) to a single process.
"$kervan" train --config "$work/c.toml" --set "checkpoint.dir=\"$work/usr1\"" \
  --set "log.metrics_file=\"$work/usr1.jsonl\"" >"$work/usr1.out" 2>&1 &
pid=$!
pids+=("$pid")
wait_for_steps "$work/usr1.jsonl" 3 || fail "the np 1 run logs no steps"
kill -USR1 "$pid"
wait "$pid"
rc=$?
[[ $rc -eq 0 ]] || fail "SIGUSR1: exit $rc"
grep -q "stopped by SIGUSR1 after step [0-9]*: checkpoint saved to $work/usr1/step_" "$work/usr1.out" ||
  fail "SIGUSR1: $(tail -2 "$work/usr1.out")"

# Two SIGINTs: the second ends the process at once. Steps of about 0.2 s leave time for both.
"$kervan" train --config "$work/c.toml" --set model.d_model=256 --set train.seq_len=128 --set train.micro_batch=8 \
  --set checkpoint.every=2 --set "checkpoint.dir=\"$work/int\"" --set "log.metrics_file=\"$work/int.jsonl\"" \
  >"$work/int.out" 2>&1 &
pid=$!
pids+=("$pid")
wait_for_steps "$work/int.jsonl" 3 || fail "the SIGINT run logs no steps"
# The step-2 checkpoint is written in the background (at nice +10): on a loaded machine it can
# still be in flight after step 3, so wait for it to be committed before interrupting.
for _ in $(seq 300); do [[ -e "$work/int/latest" ]] && break; sleep 0.1; done
kill -INT "$pid"
sleep 0.02
kill -INT "$pid"
wait "$pid"
rc=$?
[[ $rc -eq 130 ]] || fail "two SIGINTs: exit $rc, expected 130: $(tail -2 "$work/int.out")"
"$kervan" ckpt verify "$work/int" >/dev/null || fail "two SIGINTs: the last checkpoint does not verify"

finish checkpoint_signals "SIGTERM on one rank saves and exits 0, resumes exactly; SIGUSR1; double SIGINT; lock"
