#!/usr/bin/env bash
# `kervan train` through a coordinator: the losses and validation losses equal, bit for bit, the
# same run reading the corpus folders, for a 70/30 blend with validation splits, at np 1, DP=2
# and TP=2, with a coordinator of its own and with parallel.coordinator = "embedded", and for BERT
# and T5; checkpoints commit their data position with the coordinator, and a resumed run starts
# there with the same losses; `kervan status --stop` stops every rank after a checkpoint; a run whose
# coordinator is SIGKILLed and restarted from its journal mid-run continues with the same
# losses; a SIGKILLed worker is reported dead with its rank and host; bad settings exit 2, an
# unreachable coordinator exits 4.
set -uo pipefail
kervan=${1:?usage: train_coordinator.sh path/to/kervan}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [[ -n ${KERVAN_E2E_KEEP:-} ]] || rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/coordinator_lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi=(mpirun -np 2 --oversubscribe -x KERVAN_TOKEN)

# Two corpora of byte tokens in many small shards, each with a validation split.
for i in $(seq 1 3000); do printf 'Document %d talks about rivers and the sea, and the sea again.\n<|endoftext|>\n' "$i"; done >"$work/a.txt"
for i in $(seq 1 2000); do printf 'Record %d: the caravan left the city at dawn with %d camels.\n<|endoftext|>\n' "$i" "$i"; done >"$work/c.txt"
"$kervan" prepare --tokenizer bytes --val-documents 8 --shard-tokens 4000 --out "$work/A" "$work/a.txt" 2>/dev/null || fail "prepare A"
"$kervan" prepare --tokenizer bytes --val-documents 8 --shard-tokens 4000 --out "$work/C" "$work/c.txt" 2>/dev/null || fail "prepare C"

cat >"$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 2
d_model = 32
vocab_size = 257
[data]
weights = [0.7, 0.3]
cache_dir = "$work/cache"
[train]
steps = 8
micro_batch = 4
seq_len = 32
grad_accum = 2
lr = 3e-3
threads = 1
eval_every = 4
eval_batches = 2
TOML
folders=(--set "data.path=[\"$work/A\", \"$work/C\"]")
served=(--set 'data.path=["A", "C"]')

# identical NAME REFERENCE OTHER: every loss and validation loss, bit for bit (the sources' names
# in val_losses differ: paths there, "coordinator ADDRESS corpus 'A'" here).
numbers() { grep -o '"loss":[^,}]*\|"val_loss":[^,}]*\|"val_losses":{[^}]*}' "$1" | sed -E 's/"[^"]*":/:/g'; }
identical() {
  [[ -s "$2" && -s "$3" ]] || { fail "$1: a metrics file is missing"; return; }
  cmp -s <(numbers "$2") <(numbers "$3") ||
    fail "$1: differs from the folders: $(diff <(numbers "$2") <(numbers "$3") | head -4)"
}
train() {  # train NAME [launcher...] -- ARGS: metrics into $work/NAME.jsonl, log into $work/NAME.log
  local name=$1 launcher=()
  shift
  while [[ $1 != -- ]]; do launcher+=("$1"); shift; done
  shift
  "${launcher[@]}" "$kervan" train --config "$work/c.toml" --set log.metrics_file="\"$work/$name.jsonl\"" "$@" \
    >"$work/$name.log" 2>&1 || fail "$name: $(grep -m1 error "$work/$name.log" || tail -2 "$work/$name.log")"
}

train folders1 -- "${folders[@]}"
train folders_dp2 "${mpi[@]}" -- "${folders[@]}"
train folders_tp2 "${mpi[@]}" -- "${folders[@]}" --set parallel.tp=2
[[ $(grep -c '"val_loss"' "$work/folders1.jsonl") -eq 2 ]] || fail "the reference logged no validation losses"

start_coordinator serve --corpus "$work/A" --corpus "$work/C" --journal "$work/serve.journal" --listen 127.0.0.1:0
via=(--set "data.coordinator=\"$coord_addr\"")
train coord1 -- "${via[@]}" "${served[@]}"
identical "np 1" "$work/folders1.jsonl" "$work/coord1.jsonl"
train coord_all -- "${via[@]}"  # data.path empty: every served corpus, in order
identical "np 1, all served corpora" "$work/folders1.jsonl" "$work/coord_all.jsonl"
train coord_dp2 "${mpi[@]}" -- "${via[@]}" "${served[@]}"
identical "DP=2" "$work/folders_dp2.jsonl" "$work/coord_dp2.jsonl"
train coord_tp2 "${mpi[@]}" -- "${via[@]}" "${served[@]}" --set parallel.tp=2
identical "TP=2" "$work/folders_tp2.jsonl" "$work/coord_tp2.jsonl"
grep -q '"tp_rank":1' <("$kervan" status --coordinator "$coord_addr" --json) ||
  fail "status does not list the TP=2 workers: $("$kervan" status --coordinator "$coord_addr" --json | head -c 300)"

# BERT and T5 read their windows one by one (the objectives), through a 200 kB cache that keeps
# them fetching: equal to the folders too.
for family in bert:261 t5:358; do  # 257 byte tokens + BERT's 4 special tokens, or T5's [PAD] and 100 sentinels
  arch=${family%%:*}
  fam=(--set "model.arch=\"$arch\"" --set "model.vocab_size=${family##*:}")
  train "${arch}_folders" -- "${folders[@]}" "${fam[@]}"
  train "${arch}_coord" -- "${via[@]}" "${served[@]}" "${fam[@]}" --set data.cache_gb=0.0002
  identical "$arch, np 1" "$work/${arch}_folders.jsonl" "$work/${arch}_coord.jsonl"
done

# Checkpoints: once one is committed, rank 0 journals its data position with the coordinator; a
# run resumed from it says that it starts where the coordinator committed, and its losses continue
# the uninterrupted run's bit for bit (DP=2, checkpoints every 4 steps, 8 steps then 12).
twelve=(--set train.steps=12 --set train.schedule='"constant"' --set train.eval_every=0)  # the same lr at 8 and 12 steps
ckpt=(--set "checkpoint.dir=\"$work/ckpt\"" --set checkpoint.every=4)
train folders_12 "${mpi[@]}" -- "${folders[@]}" "${twelve[@]}"
train ckpt_a "${mpi[@]}" -- "${via[@]}" "${served[@]}" "${twelve[@]}" "${ckpt[@]}" --set train.steps=8
"$kervan" status --coordinator "$coord_addr" >"$work/status-8" 2>&1
grep -q "committed data position: step 8, 128 samples ($work/ckpt/" "$work/status-8" ||
  fail "the checkpoint of step 8 was not committed with the coordinator: $(grep -i committed "$work/status-8")"
mv "$work/ckpt_a.jsonl" "$work/ckpt_b.jsonl"  # the resumed run keeps the lines of steps 0-7
train ckpt_b "${mpi[@]}" -- "${via[@]}" "${served[@]}" "${twelve[@]}" "${ckpt[@]}"
grep -q "resumed at the data position the coordinator committed: step 8, 128 samples" "$work/ckpt_b.log" ||
  fail "the resumed run did not find its checkpoint's position at the coordinator: $(grep -m2 -i 'resumed\|committed' "$work/ckpt_b.log")"
identical "8 steps, then resumed to 12, DP=2" "$work/folders_12.jsonl" "$work/ckpt_b.jsonl"
"$kervan" status --coordinator "$coord_addr" | grep -q "committed data position: step 12, 192 samples" ||
  fail "the last checkpoint (step 12) was not committed with the coordinator"
stop_coordinator

# kervan status --stop: every rank stops after the same step, saving a checkpoint first.
start_coordinator stop --corpus "$work/A" --corpus "$work/C" --journal "$work/stop.journal" --listen 127.0.0.1:0 \
  --heartbeat-ms 100
"${mpi[@]}" "$kervan" train --config "$work/c.toml" --set train.steps=100000 --set train.eval_every=0 \
  --set "data.coordinator=\"$coord_addr\"" "${served[@]}" --set "checkpoint.dir=\"$work/ckpt_stop\"" \
  >"$work/stopped.log" 2>&1 &
stopped=$!
for _ in $(seq 1 400); do [[ $(status_field step) -ge 3 ]] 2>/dev/null && break; sleep 0.05; done
"$kervan" status --coordinator "$coord_addr" --stop "e2e asks" >/dev/null 2>&1 || fail "status --stop failed"
wait "$stopped" || fail "the run asked to stop exited non-zero: $(grep -m1 error "$work/stopped.log")"
grep -q "stopped by the coordinator (e2e asks) after step [0-9]*: checkpoint saved to $work/ckpt_stop/" "$work/stopped.log" ||
  fail "the run did not stop on the coordinator's request with a checkpoint: $(tail -2 "$work/stopped.log")"
stop_coordinator

unset KERVAN_TOKEN  # the embedded coordinator makes its own (and writes it for kervan status)
train embedded_dp2 "${mpi[@]}" -- "${folders[@]}" --set parallel.coordinator=embedded
identical "embedded, DP=2" "$work/folders_dp2.jsonl" "$work/embedded_dp2.jsonl"
[[ -s "$work/cache/default/coordinator.token" ]] || fail "the embedded coordinator wrote no token file"
export KERVAN_TOKEN=e2e-secret-$$

# SIGKILL of the coordinator mid-run: a cache too small for the corpora keeps the run fetching;
# the coordinator comes back on its port from its journal, and the run goes on unchanged.
long=(--set train.steps=300 --set train.eval_every=100 --set data.cache_gb=0.0002)
train folders_long -- "${folders[@]}" "${long[@]}"
start_coordinator crash --corpus "$work/A" --corpus "$work/C" --journal "$work/crash.journal" --listen 127.0.0.1:0
crash_addr=$coord_addr
"$kervan" train --config "$work/c.toml" "${long[@]}" --set "data.coordinator=\"$crash_addr\"" "${served[@]}" \
  --set log.metrics_file="\"$work/crash.jsonl\"" >"$work/crash-train.log" 2>&1 &
trainer=$!
for _ in $(seq 1 400); do
  [[ $(grep -c '"loss"' "$work/crash.jsonl" 2>/dev/null) -ge 10 ]] && break
  sleep 0.05
done
kill -KILL "$coord_pid"
wait "$coord_pid" 2>/dev/null
steps_at_kill=$(grep -c '"loss"' "$work/crash.jsonl")
sleep 2.5  # longer than the 2 s after which a worker warns that its coordinator is silent
start_coordinator crash --corpus "$work/A" --corpus "$work/C" --journal "$work/crash.journal" --listen "$crash_addr"
wait "$trainer" || fail "the run did not survive the coordinator's restart: $(grep -m1 error "$work/crash-train.log")"
((steps_at_kill < 300)) || fail "the coordinator was killed only after the run had ended"
identical "coordinator SIGKILLed at step $steps_at_kill and restarted" "$work/folders_long.jsonl" "$work/crash.jsonl"
grep -q "replayed [0-9]* journal records" "$work/crash.log" || fail "the restarted coordinator replayed nothing"
grep -q "the coordinator at $crash_addr answers again" "$work/crash-train.log" ||
  fail "the run never noticed that its coordinator was gone: $(grep -c . "$work/crash-train.log") log lines"

# SIGKILL of a worker: the coordinator reports it dead, with its rank and host.
stop_coordinator
start_coordinator dead --corpus "$work/A" --corpus "$work/C" --journal "$work/dead.journal" --listen 127.0.0.1:0 \
  --heartbeat-ms 100 --dead-after-s 1
"$kervan" train --config "$work/c.toml" --set train.steps=100000 --set train.eval_every=0 \
  --set "data.coordinator=\"$coord_addr\"" "${served[@]}" >"$work/victim.log" 2>&1 &
victim=$!
for _ in $(seq 1 200); do grep -q "registered worker" "$work/dead.log" && break; sleep 0.05; done
sleep 0.5
kill -KILL "$victim"
wait "$victim" 2>/dev/null
for _ in $(seq 1 60); do grep -q "dead: worker" "$work/dead.log" && break; sleep 0.05; done
grep -q "dead: worker 1 (rank 0, host $(hostname), pid $victim) has sent nothing" "$work/dead.log" ||
  fail "the killed worker was not reported dead with its rank and host: $(grep dead "$work/dead.log")"
"$kervan" status --coordinator "$coord_addr" | grep -q "DEAD" || fail "status does not show the dead worker"
stop_coordinator

# Bad settings.
expect_error "address without port" "data.coordinator \"nowhere\" is not HOST:PORT" \
  "$kervan" train --config "$work/c.toml" --set data.coordinator=nowhere
expect_error "unknown mode" "parallel.coordinator must be \"embedded\" or unset" \
  "$kervan" train --config "$work/c.toml" "${folders[@]}" --set parallel.coordinator=remote
expect_error "unwritable cache" "data.cache_dir: cannot create /dev/null/x/default" \
  "$kervan" train --config "$work/c.toml" "${folders[@]}" --set parallel.coordinator=embedded --set data.cache_dir=/dev/null/x
expect_exit 4 "unreachable" "GetManifest on the coordinator at 127.0.0.1:1: no answer for 1 s (data.coordinator_timeout_s" \
  "$kervan" train --config "$work/c.toml" --set data.coordinator=127.0.0.1:1 --set data.coordinator_timeout_s=1

finish train_coordinator "all checks passed"
