#!/usr/bin/env bash
# slurm/train.sbatch on a real Slurm cluster started by this test (tests/e2e/slurm_cluster.sh):
# munged, slurmctld and slurmd in a temporary folder, stopped by PID at the end, also on failure.
#  1. An uninterrupted job of 2 tasks (mpirun -np 2, DP = 2).
#  2. The same job preempted: `scancel --signal=USR1 --batch` while it trains; the ranks save a
#     checkpoint at the next step, the script requeues the job, the next start resumes and
#     finishes. Every step is logged once, with the uninterrupted job's loss, bit for bit.
#  3. Bad input: a missing config and a missing corpus end the job with exit 2 and the reason.
#  4. With KERVAN_SLURM_NODES=2 (the default): the same sbatch over 2 nodes (two slurmd on this
#     machine), its losses equal to the 1-node job's within fp32 summation order.
set -uo pipefail
kervan=${1:?usage: slurm_train.sh path/to/kervan}
kervan=$(readlink -f "$kervan")
here=$(cd "$(dirname "$0")" && pwd)
sbatch_script=$(readlink -f "$here/../../slurm/train.sbatch")
work=$(mktemp -d /tmp/kervan-slurm.XXXXXX)
source "$here/lib.sh"
source "$here/slurm_cluster.sh"
trap 'slurm_stop; [[ -n ${KEEP:-} ]] || rm -rf "$work"' EXIT

[[ $(id -u) -eq 0 ]] || { echo "FAIL: the Slurm test starts slurmctld and slurmd, which needs root"; exit 1; }
slurm_install || { echo "FAIL: cannot install slurmctld slurmd slurm-client munge"; exit 1; }
slurm_start "$work/slurm" 1 || { echo "FAIL: the test cluster did not start"; tail -5 "$work"/slurm/*.log; exit 1; }

small_text 200 "$work/t.txt"
"$kervan" prepare --tokenizer bytes --val-documents 0 --out "$work/corpus" "$work/t.txt" >/dev/null 2>&1 || fail "prepare"
# A constant learning rate, so that every step's loss depends only on the state before it.
cat >"$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 4
d_model = 64
vocab_size = 257
[data]
path = "$work/corpus"
[train]
steps = 40
micro_batch = 4
seq_len = 64
lr = 1e-3
schedule = "constant"
threads = 1
[checkpoint]
every = 10
TOML

# submit NAME [sbatch options]: the job id; its output in $work/NAME.out, metrics in NAME.jsonl.
submit() {
  local name=$1
  shift
  KERVAN=$kervan KERVAN_CONFIG=${config:-$work/c.toml} KERVAN_CKPT_DIR=$work/$name.ckpt \
    KERVAN_SET="log.metrics_file=$work/$name.jsonl" \
    sbatch --parsable --export=ALL -J "$name" -o "$work/$name.out" "$@" "$sbatch_script"
}

# 1. Uninterrupted.
id=$(submit straight -n 2) || fail "sbatch straight"
state=$(wait_job "$id" 120)
[[ $state == COMPLETED ]] || fail "straight job: $state: $(tail -5 "$work/straight.out")"
grep -q "layout: world 2 = DP 2 x TP 1" "$work/straight.out" || fail "the job did not plan 2 ranks: $(head -5 "$work/straight.out")"
[[ $(grep -c '"step"' "$work/straight.jsonl" 2>/dev/null) -eq 40 ]] || fail "straight job: not 40 steps logged"
[[ -f $work/straight.rank1.log ]] || fail "rank 1 has no log file of its own"

# 2. Preempted: USR1 to the batch script after a few steps (each step waits 100 ms, so the job is
# still training when the signal comes).
export KERVAN_TEST_STEP_DELAY_MS=100
id=$(submit preempted -n 2) || fail "sbatch preempted"
for _ in $(seq 1 600); do
  n=$(grep -c '"step"' "$work/preempted.jsonl" 2>/dev/null)
  ((${n:-0} >= 8)) && break
  sleep 0.1
done
scancel --signal=USR1 --batch "$id" || fail "scancel --signal=USR1"
# Slurm holds a requeued batch job back for about 2 minutes (its begin time); the test does not wait.
for _ in $(seq 1 300); do
  [[ $(job_field "$id" Restarts) == 1 && $(job_state "$id") == PENDING ]] && break
  sleep 0.1
done
# Started again only once the node is idle: a start while slurmd still cleans up the first one
# is killed by Slurm ("Job credential revoked", "already killed, do not launch"), a race of the
# test's shortcut on a loaded machine, not of the job.
for _ in $(seq 1 300); do
  [[ -z $(sinfo -h -N -o %T | grep -v '^idle$') ]] && break
  sleep 0.1
done
scontrol update JobId="$id" StartTime=now || fail "scontrol update StartTime=now"
state=$(wait_job "$id" 180)
unset KERVAN_TEST_STEP_DELAY_MS
[[ $state == COMPLETED ]] || fail "preempted job: $state: $(tail -5 "$work/preempted.out")"
grep -q "stopped by SIGUSR1 after step [0-9]*: checkpoint saved" "$work/preempted.out" || fail "no checkpoint on USR1: $(grep -i -e sigusr1 -e error "$work/preempted.out" | head)"
grep -q "requeueing job $id" "$work/preempted.out" || fail "the script did not requeue"
grep -q "resumed from $work/preempted.ckpt/step_" "$work/preempted.out" || fail "the second start did not resume"
[[ $(job_field "$id" Restarts) == 1 ]] || fail "Restarts = $(job_field "$id" Restarts), expected 1"
losses_match preemption "$work/straight.jsonl" "$work/preempted.jsonl" 0 39 0

# 3. Bad input: the job ends at once with the reason, and writes nothing.
id=$(config=$work/missing.toml submit noconfig -n 2)
[[ $(wait_job "$id" 60) == FAILED ]] || fail "missing config: the job did not fail"
grep -q "KERVAN_CONFIG: no such config file: $work/missing.toml" "$work/noconfig.out" || fail "missing config: $(cat "$work/noconfig.out")"
sed "s|$work/corpus|$work/nocorpus|" "$work/c.toml" >"$work/nocorpus.toml"
id=$(config=$work/nocorpus.toml submit nocorpus -n 2)
[[ $(wait_job "$id" 60) == FAILED ]] || fail "missing corpus: the job did not fail"
grep -q "$work/nocorpus" "$work/nocorpus.out" || fail "missing corpus not named: $(cat "$work/nocorpus.out")"
[[ $(job_field "$id" ExitCode) == 2:0 ]] || fail "missing corpus: exit code $(job_field "$id" ExitCode), expected 2"
[[ ! -e $work/nocorpus.ckpt ]] || fail "missing corpus: a checkpoint folder was made"

# 4. Two nodes: two slurmd on this machine.
if [[ ${KERVAN_SLURM_NODES:-2} -ge 2 ]]; then
  slurm_stop
  if slurm_start "$work/slurm2" 2; then
    id=$(KERVAN_BIND=none submit twonodes -N 2 -n 2 --ntasks-per-node=1) || fail "sbatch twonodes"
    state=$(wait_job "$id" 120)
    [[ $state == COMPLETED ]] || fail "2-node job: $state: $(tail -5 "$work/twonodes.out")"
    grep -q "2 ranks on 2 node(s)" "$work/twonodes.out" || fail "2-node job: not on 2 nodes: $(head -3 "$work/twonodes.out")"
    losses_match twonodes "$work/straight.jsonl" "$work/twonodes.jsonl" 0 39 0
  else
    fail "the 2-node cluster did not start"
  fi
fi
finish slurm_train "sbatch of 2 tasks, USR1 -> checkpoint -> requeue -> resume with identical losses, bad inputs, 2 nodes"
