#!/usr/bin/env bash
# A job stopped and resumed through a coordinator equals an uninterrupted one, also when the
# coordinator's journal has moved on past the checkpoint the job resumes from:
#  - a stop request (`kervan status --stop`) is journaled: the coordinator SIGKILLed right after
#    it and restarted from its journal still asks the running job to stop; the job saves a
#    checkpoint and exits 0;
#  - the job restarted by its "scheduler" is not stopped again by that old request;
#  - resumed from an older checkpoint than the one the coordinator last committed (the newer one
#    lost), the run starts at the older checkpoint's data position, its losses equal the
#    uninterrupted run's bit for bit, and the coordinator's committed position is set back to it;
#  - the checkpoint records which corpora the coordinator served: another corpus served under
#    the same name is named in a warning at resume;
#  - an embedded coordinator's journal made for one corpus is refused for another (exit 2 on every
#    rank, naming the journal and data.coordinator_job), and its journal is left as it was.
set -uo pipefail
kervan=${1:?usage: coordinator_resume.sh path/to/kervan}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [[ -n ${KERVAN_E2E_KEEP:-} ]] || rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/coordinator_lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none

for i in $(seq 1 2000); do printf 'Document %d talks about rivers and the sea, and the sea again.\n<|endoftext|>\n' "$i"; done >"$work/a.txt"
for i in $(seq 1 2000); do printf 'Record %d: the caravan left the city at dawn with %d camels.\n<|endoftext|>\n' "$i" "$i"; done >"$work/c.txt"
"$kervan" prepare --tokenizer bytes --val-fraction 0 --shard-tokens 4000 --out "$work/A" "$work/a.txt" 2>/dev/null || fail "prepare A"
"$kervan" prepare --tokenizer bytes --val-fraction 0 --shard-tokens 4000 --out "$work/C" "$work/c.txt" 2>/dev/null || fail "prepare C"

cat >"$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 2
d_model = 32
vocab_size = 257
[data]
cache_dir = "$work/cache"
[train]
steps = 40
micro_batch = 4
seq_len = 32
lr = 3e-3
schedule = "constant"
threads = 1
eval_every = 0
[checkpoint]
every = 4
keep_every = 4  # step 4 stays for the resume from an older checkpoint
TOML

# The uninterrupted run, from the folder.
"$kervan" train --config "$work/c.toml" --set "data.path=[\"$work/A\"]" \
  --set log.metrics_file="\"$work/whole.jsonl\"" >"$work/whole.log" 2>&1 || fail "the uninterrupted run: $(tail -2 "$work/whole.log")"

# Heartbeats every 1.5 s: the stop request and the coordinator's death both fall between two;
# steps of 0.5 s leave the run most of its 40 steps (20 s) to hear the request in.
start_coordinator coord --corpus "A=$work/A" --journal "$work/coord.journal" --listen 127.0.0.1:0 --heartbeat-ms 1500
addr=$coord_addr
via=(--set "data.coordinator=\"$addr\"" --set 'data.path=["A"]')
KERVAN_TEST_STEP_DELAY_MS=500 "$kervan" train --config "$work/c.toml" "${via[@]}" \
  --set "checkpoint.dir=\"$work/ckpt\"" --set log.metrics_file="\"$work/first.jsonl\"" >"$work/first.log" 2>&1 &
first=$!
for _ in $(seq 1 600); do [[ $(grep -c '"loss"' "$work/first.jsonl" 2>/dev/null) -ge 4 ]] && break; sleep 0.05; done
"$kervan" status --coordinator "$addr" --stop "node drain" >/dev/null 2>&1 || fail "status --stop failed"
kill -KILL "$coord_pid"
wait "$coord_pid" 2>/dev/null
start_coordinator coord --corpus "A=$work/A" --journal "$work/coord.journal" --listen "$addr" --heartbeat-ms 1500
"$kervan" status --coordinator "$addr" --json | grep -q '"stop_requested":true,"stop_reason":"node drain"' ||
  fail "the stop request did not survive the coordinator's SIGKILL: $("$kervan" status --coordinator "$addr" --json | head -c 400)"
wait "$first" || fail "the run asked to stop exited non-zero: $(grep -m1 error "$work/first.log")"
grep -q "stopped by the coordinator (node drain) after step" "$work/first.log" ||
  fail "the run was not stopped by the journaled request: $(tail -2 "$work/first.log")"
stopped_at=$(grep -o 'stopped by the coordinator (node drain) after step [0-9]*' "$work/first.log" | grep -o '[0-9]*$')
((stopped_at >= 4 && stopped_at < 40)) || fail "stopped after step '$stopped_at', expected 4 to 39"
[[ -d "$work/ckpt/step_00000004" ]] || fail "no checkpoint of step 4"

# The scheduler restarts the job: the old stop request does not stop it again.
cp "$work/first.jsonl" "$work/second.jsonl"
"$kervan" train --config "$work/c.toml" "${via[@]}" --set "checkpoint.dir=\"$work/ckpt\"" \
  --set log.metrics_file="\"$work/second.jsonl\"" >"$work/second.log" 2>&1 || fail "the restarted run: $(grep -m1 error "$work/second.log")"
grep -q "stopped by the coordinator" "$work/second.log" && fail "the restarted job was stopped by the old request"
grep -q "resumed at the data position the coordinator committed: step $stopped_at," "$work/second.log" ||
  fail "the restarted run did not start at the committed position of step $stopped_at: $(grep -m2 -i 'resumed' "$work/second.log")"
losses_match "stopped at $stopped_at and restarted" "$work/whole.jsonl" "$work/second.jsonl" 0 39 0
"$kervan" status --coordinator "$addr" --json | grep -q '"stop_requested":false' ||
  fail "status still shows the old stop request for the restarted job"

# The journal has moved on (step 40 committed); the job resumes from step 4 (the newer checkpoints
# lost): the data restarts where step 4 was, and the coordinator's position goes back to it.
cp "$work/first.jsonl" "$work/older.jsonl"
"$kervan" train --config "$work/c.toml" "${via[@]}" --set "checkpoint.resume=\"$work/ckpt/step_00000004\"" \
  --set "checkpoint.dir=\"$work/ckpt2\"" --set train.steps=8 --set log.metrics_file="\"$work/older.jsonl\"" \
  >"$work/older.log" 2>&1 || fail "the run resumed from step 4: $(grep -m1 error "$work/older.log")"
grep -q "resumed at step 4 from $work/ckpt/step_00000004, but the coordinator at $addr last committed the data position of step 40" \
  "$work/older.log" || fail "the resume from step 4 did not name the coordinator's newer position: $(grep -m2 -i 'resumed' "$work/older.log")"
losses_match "resumed from step 4 while the coordinator had committed step 40" "$work/whole.jsonl" "$work/older.jsonl" 0 7 0
# Step 4 was committed at the resume, then step 8 at the end: both journaled, in order.
"$kervan" status --coordinator "$addr" | grep -q "committed data position: step 8, 32 samples ($work/ckpt2/" ||
  fail "the coordinator's position was not set back: $("$kervan" status --coordinator "$addr" | grep -i committed)"
stop_coordinator

# Another corpus served under the name A: the checkpoint's record of what was served says so.
start_coordinator other --corpus "A=$work/C" --journal "$work/other.journal" --listen 127.0.0.1:0
"$kervan" train --config "$work/c.toml" --set "data.coordinator=\"$coord_addr\"" --set 'data.path=["A"]' \
  --set "checkpoint.resume=\"$work/ckpt2/step_00000008\"" --set "checkpoint.dir=\"$work/ckpt3\"" --set train.steps=9 \
  >"$work/other-corpus.log" 2>&1 || fail "the run on another corpus: $(grep -m1 error "$work/other-corpus.log")"
grep -q "refers to another sample order (the coordinator served other corpora (name and fingerprint: A " \
  "$work/other-corpus.log" || fail "another corpus under the same name went unnoticed: $(grep -m2 -i warn "$work/other-corpus.log")"
stop_coordinator

# An embedded coordinator's journal belongs to its corpus: another corpus under the same job and
# cache folder is refused on every rank, naming the journal; the journal is unchanged.
embedded=(--set parallel.coordinator=embedded --set train.steps=2 --set checkpoint.every=0)
mpi=(mpirun -np 2 --oversubscribe)
"${mpi[@]}" "$kervan" train --config "$work/c.toml" "${embedded[@]}" --set "data.path=[\"$work/A\"]" \
  >"$work/embedded.log" 2>&1 || fail "the embedded run: $(grep -m1 error "$work/embedded.log")"
journal=$work/cache/default/coordinator.journal
[[ -s "$journal" ]] || fail "the embedded coordinator wrote no journal at $journal"
before=$(sha256sum <"$journal")
start=$SECONDS
expect_error "embedded, another corpus" "$journal: the journal belongs to job 'default', corpora" \
  "${mpi[@]}" "$kervan" train --config "$work/c.toml" "${embedded[@]}" --set "data.path=[\"$work/C\"]"
grep -qF "data.coordinator_job" "$work/err" || fail "the refusal does not say how to start another journal: $(grep -m1 error "$work/err")"
((SECONDS - start < 60)) || fail "the refused embedded run took $((SECONDS - start)) s"
[[ $(sha256sum <"$journal") == "$before" ]] || fail "the refused run changed the embedded journal"

finish coordinator_resume "all checks passed"
