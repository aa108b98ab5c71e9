#!/usr/bin/env bash
# The multi-rank part of the GPU check (scripts/gpu-check.sh runs it): NCCL data and tensor
# parallelism, and ZeRO-1, with two ranks under the bundled Open MPI on the one GPU.
#   usage: scripts/gpu-check-ranks.sh UNPACKED_BUNDLE LOG_DIR RESULTS.jsonl
# `kervan train --set train.device=cuda` on a small byte corpus for 6 steps: one process (the
# reference), `mpirun -np 1` (an NCCL group of one), then `mpirun -np 2` with DP=2 (the same global
# batch: micro-batch 4 x 2 ranks against 8 x 1), ZeRO-1 and TP=2; each run's losses against the
# reference's (max relative difference; 2e-4 passes: fp32 summation order differs between layouts).
# NCCL usually refuses two ranks of one communicator on one device ("Duplicate GPU detected"):
# what NCCL said is printed (NCCL_DEBUG=WARN), and after the first such refusal the other
# two-rank runs are skipped, as they would fail the same way. Then `kervan bench train --device
# cuda` under mpirun (DP, TP, ZeRO-1) where two ranks run at all. Never fails the check by itself:
# it records what it found. Each run is bounded (timeout, parallel.collective_timeout_s), and the
# stage starts no run after BUDGET_S seconds (120), so that the speed stages keep their time.
set -uo pipefail
K=$1 LOG=$2 RESULTS=$3
BUDGET_S=${BUDGET_S:-120}  # gpu-check.sh passes what its deadline leaves
note() { echo "gpu-check ranks: $*"; }
record() { echo "$1" >> "$RESULTS"; }
if [[ ! -x $K/ompi/bin/mpirun ]]; then
  note "skipped: the bundle carries no mpirun (scripts/gpu-bundle-mpi.sh found no Open MPI on the build machine)"
  record '{"stage": "two_ranks", "skipped": "no mpirun in the bundle"}'
  exit 0
fi
# The bundled Open MPI, relocated (scripts/gpu-bundle-mpi.sh): one node, shared memory.
export OPAL_PREFIX=$K/ompi PMIX_MCA_mca_base_component_path=$K/pmix/lib/pmix OMPI_MCA_plm=isolated
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_DEBUG=WARN
# A container may refuse vader's cross-memory-attach single copy (tests/mpi set the same).
export OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN=("$K/ompi/bin/mpirun" --oversubscribe -x LD_LIBRARY_PATH -x NCCL_DEBUG -x PATH)
kervan=$K/bin/kervan
if ! "${MPIRUN[@]}" -np 1 true > "$LOG/mpirun_probe.log" 2>&1; then
  note "skipped: the bundled mpirun does not start here: $(head -c 300 "$LOG/mpirun_probe.log" | tr '\n' ' ')"
  record '{"stage": "two_ranks", "skipped": "bundled mpirun does not start"}'
  exit 0
fi

W=$(mktemp -d /tmp/kervan-ranks.XXXX)
cat docs/*.md README.md > "$W/t.txt"
"$kervan" prepare --tokenizer bytes --out "$W/t.bin" "$W/t.txt" > "$LOG/ranks_prepare.log" 2>&1 ||
  { note "skipped: kervan prepare failed: $(tail -n 2 "$LOG/ranks_prepare.log")"; exit 0; }
cat > "$W/c.toml" <<TOML
[model]
n_layer = 2
n_head = 4
d_model = 64
vocab_size = 256
[data]
path = "$W/t.bin"
[train]
device = "cuda"
steps = 6
micro_batch = 4
seq_len = 64
grad_accum = 2
lr = 3e-3
warmup_steps = 2
[parallel]
bucket_mb = 0.01
collective_timeout_s = 30
TOML

# run NAME [mpirun -np N] -- kervan's extra flags: the run's metrics in $W/NAME.jsonl, its output in
# $LOG/ranks_NAME.log; prints the exit status.
run() {
  local name=$1
  shift
  local launcher=()
  while [[ $1 != -- ]]; do launcher+=("$1"); shift; done
  shift
  timeout 45 "${launcher[@]}" "$kervan" train --config "$W/c.toml" --set log.metrics_file="\"$W/$name.jsonl\"" "$@" \
    > "$LOG/ranks_$name.log" 2>&1
  echo $?
}
# compare NAME: the largest relative loss difference against the reference, per step.
compare() {
  python3 - "$W/ref.jsonl" "$W/$1.jsonl" <<'PY'
import json, sys
def losses(p):
    return {r["step"]: r["loss"] for r in map(json.loads, open(p)) if "loss" in r}
ref, got = losses(sys.argv[1]), losses(sys.argv[2])
if sorted(got) != sorted(ref):
    print(f"steps {sorted(got)} instead of {sorted(ref)}"); sys.exit(1)
d = max(abs(got[s] - ref[s]) / abs(ref[s]) for s in ref)
print(f"{d:.2e}"); sys.exit(0 if d <= 2e-4 else 1)
PY
}
# What NCCL (or kervan) said when a run failed: its warnings and kervan's error line.
said() { grep -hE "NCCL WARN|Duplicate GPU|kervan: error" "$LOG/ranks_$1.log" | sort -u | head -n 4 | cut -c1-300; }

rc=$(run ref -- --set train.micro_batch=8)
if [[ $rc != 0 ]]; then
  note "the one-process reference failed (rc $rc): $(said ref)"
  record "{\"stage\": \"two_ranks\", \"reference_rc\": $rc}"
  exit 0
fi
refused=""
for spec in "np1:1:--set train.micro_batch=8" "dp2:2:" "zero1:2:--set parallel.zero=1" "tp2:2:--set train.micro_batch=8 --set parallel.tp=2"; do
  IFS=: read -r name np flags <<< "$spec"
  if (( SECONDS > BUDGET_S )); then
    note "$name: skipped (the stage's ${BUDGET_S} s are spent)"
    record "{\"stage\": \"ranks_$name\", \"skipped\": \"out of time\"}"
    continue
  fi
  if [[ $np == 2 && -n $refused ]]; then
    note "$name: skipped (two ranks on this GPU were refused above)"
    record "{\"stage\": \"ranks_$name\", \"skipped\": \"refused\"}"
    continue
  fi
  # shellcheck disable=SC2086
  rc=$(run "$name" "${MPIRUN[@]}" -np "$np" -- $flags)
  if [[ $rc == 0 ]]; then
    diff=$(compare "$name")
    crc=$?
    note "$name ($np rank(s)): losses vs one process: max relative difference $diff $([[ $crc == 0 ]] && echo ok || echo MISMATCH)"
    record "{\"stage\": \"ranks_$name\", \"rc\": $crc, \"max_rel_diff\": \"$diff\"}"
  else
    note "$name ($np rank(s)) failed (rc $rc); NCCL/kervan said: $(said "$name" | tr '\n' '|')"
    record "{\"stage\": \"ranks_$name\", \"rc\": $rc}"
    [[ $np == 2 ]] && refused=$name
  fi
done

# kervan bench train --device cuda under mpirun: DP, TP, ZeRO-1.
if [[ -z $refused ]]; then
  for spec in "dp2:" "tp2:--tp 2" "zero1:--zero"; do
    IFS=: read -r name flags <<< "$spec"
    (( SECONDS > BUDGET_S )) && { note "bench train $name: skipped (out of time)"; continue; }
    # shellcheck disable=SC2086
    if timeout 45 "${MPIRUN[@]}" -np 2 "$kervan" bench train --device cuda --preset gpt2-tiny --steps 3 --warmup-steps 1 \
         $flags > "$LOG/ranks_bench_$name.json" 2> "$LOG/ranks_bench_$name.err"; then
      note "bench train $name: $(tail -n 1 "$LOG/ranks_bench_$name.json" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("{:.0f} tok/s, {:.1f} ms/step, ranks {}, tp {}, zero {}".format(r["tokens_per_s"], r["ms_per_step"], r["ranks"], r["tp"], r["zero"]))')"
    else
      note "bench train $name failed: $(grep -hE 'NCCL WARN|kervan: error' "$LOG/ranks_bench_$name.err" | sort -u | head -n 3 | tr '\n' '|')"
    fi
  done
fi
rm -rf "$W"
