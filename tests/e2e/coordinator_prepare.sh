#!/usr/bin/env bash
# `kervan prepare --coordinator`: three processes lease work units from a coordinator and the
# corpus is byte-identical (every file, the manifest included) to a single-process prepare; the
# same when a worker is SIGKILLed (its unit goes to another once its lease runs out) and when the
# coordinator is SIGKILLed mid-prepare and restarted from its journal. Bad input: exit 2.
set -uo pipefail
kervan=${1:?usage: coordinator_prepare.sh path/to/kervan}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/coordinator_lib.sh"

mkdir -p "$work/in"
for f in $(seq 10 49); do
  for i in $(seq 1 150); do printf 'file %d document %d with some words\n<|endoftext|>\n' "$f" "$i"; done > "$work/in/f$f.txt"
done
for i in $(seq 1 100); do printf '{"text": "json %d"}\n' "$i"; done | gzip > "$work/in/g.jsonl.gz"
args=(prepare --tokenizer bytes --threads 1 --shard-tokens 2000 --val-fraction 0.05 --out "$work/corpus" "$work/in")
export KERVAN_PREPARE_UNIT_BYTES=3000  # 41 work units

"$kervan" "${args[@]}" 2>"$work/single.log" || fail "single-process prepare: $(tail -3 "$work/single.log")"
mv "$work/corpus" "$work/one"

# same_corpus NAME: $work/corpus equals $work/one, file for file.
same_corpus() {
  [[ -e "$work/corpus/manifest.json" ]] || { fail "$1: no manifest"; return; }
  diff -r "$work/one" "$work/corpus" >"$work/diff" 2>&1 || fail "$1: the corpus differs: $(head -5 "$work/diff")"
}

# workers N NAME [ENV...]: N prepare workers against $coord_addr; waits for them all.
run_workers() {
  local n=$1 name=$2 pids=() i
  for i in $(seq 1 "$n"); do
    "$kervan" "${args[@]}" --coordinator "$coord_addr" >"$work/$name-$i.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || fail "$name worker $((i + 1)) failed: $(tail -3 "$work/$name-$((i + 1)).log")"; done
}

# 1. Three workers share the units.
start_coordinator three --journal "$work/three.journal" --listen 127.0.0.1:0
run_workers 3 three
same_corpus "three workers"
busy=0
for i in 1 2 3; do grep -q "unit [0-9]*: built" "$work/three-$i.log" && busy=$((busy + 1)); done
((busy >= 2)) || fail "three workers: only $busy of them built units"
[[ $(status_field units_done) == 41 ]] || fail "three workers: status says $(status_field units_done) units done"
stop_coordinator
rm -rf "$work/corpus"

# 2. A worker SIGKILLs itself after finishing its first unit, before telling the coordinator:
# that unit's lease runs out (1 s) and another worker takes it over.
start_coordinator killed --journal "$work/killed.journal" --listen 127.0.0.1:0 --lease-s 1 --dead-after-s 1
(KERVAN_PREPARE_KILL_AFTER_UNITS=1 "$kervan" "${args[@]}" --coordinator "$coord_addr" >"$work/victim.log" 2>&1) 2>/dev/null
[[ $? -eq 137 ]] || fail "the victim worker did not die by SIGKILL"
run_workers 2 survivors
same_corpus "a worker killed"
grep -q "unit 0: kept from an earlier run" "$work"/survivors-*.log || fail "nobody took over the killed worker's unit 0"
grep -q "dead: worker 1 .*pid" "$work/killed.log" || fail "the dead worker was not reported: $(tail -3 "$work/killed.log")"
stop_coordinator
rm -rf "$work/corpus"

# 3. The coordinator is SIGKILLed mid-prepare and restarted on its port from its journal; the
# workers retry until it is back and finish.
start_coordinator crash --journal "$work/crash.journal" --listen 127.0.0.1:0
port_addr=$coord_addr
pids=()
for i in 1 2; do
  "$kervan" "${args[@]}" --coordinator "$coord_addr" --coordinator-timeout-s 60 >"$work/crash-$i.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 1 200); do
  [[ "$(status_field units_done)" -ge 2 ]] 2>/dev/null && break
  sleep 0.02
done
kill -KILL "$coord_pid"
wait "$coord_pid" 2>/dev/null
done_at_kill=$(grep -c "^.*unit [0-9]*: built" "$work"/crash-*.log | awk -F: '{ s += $2 } END { print s }')
((done_at_kill < 41)) || fail "the coordinator was killed only after the prepare had finished"
sleep 1
start_coordinator crash --journal "$work/crash.journal" --listen "$port_addr"
for i in "${!pids[@]}"; do wait "${pids[$i]}" || fail "worker $((i + 1)) after the crash: $(tail -3 "$work/crash-$((i + 1)).log")"; done
same_corpus "coordinator killed"
grep -q "replayed [0-9]* journal records" "$work/crash.log" || fail "the restarted coordinator replayed nothing"
stop_coordinator

# Bad input: another plan under the same job (other options) is refused, naming both plans.
start_coordinator plan --journal "$work/plan.journal" --listen 127.0.0.1:0
rm -rf "$work/corpus"
"$kervan" "${args[@]}" --coordinator "$coord_addr" >/dev/null 2>&1 || fail "first plan"
rm -rf "$work/corpus"
expect_error "another plan" "this job is preparing another plan" "$kervan" "${args[@]/2000/3000}" --coordinator "$coord_addr"
stop_coordinator
expect_error "no token" "needs the job's shared secret" env -u KERVAN_TOKEN "$kervan" "${args[@]}" --coordinator 127.0.0.1:1
expect_exit 4 "unreachable" "Register on the coordinator at 127.0.0.1:1: no answer for 1 s" \
  "$kervan" "${args[@]}" --coordinator 127.0.0.1:1 --coordinator-timeout-s 1

finish coordinator_prepare "all checks passed"
