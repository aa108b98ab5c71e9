#!/usr/bin/env bash
# The GPU check: one command for a lent GPU machine (CUDA toolkit, CMake, ninja and PyTorch, none
# of Debian's packages, no network). It needs gpu-bundle/kervan-gpu.tar.gz, which
# scripts/gpu-bundle.sh makes on a build machine (carry the ignored gpu-bundle folder along).
#   1. tests/gpu (every kernel against its CPU twin, whole models, 50 training steps, checkpoints
#      saved from the GPU, the Hugging Face export in transformers' GPT2LMHeadModel)
#   2. `kervan train` on the GPU end to end: repeat bit-identical, SIGKILL + resume bit for bit,
#      export/import (tests/gpu/resume.sh), in fp32 and bf16
#   3. speed: a bf16 cuBLAS GEMM (PyTorch), the attention core alone, kervan bench train --device
#      cuda --precision bf16 for gpt2-small and gpt2-medium at seq 1024 and fp32 gpt2-small beside
#      them, and nanoGPT's recipe with torch.compile on the same card
#   4. compute-sanitizer memcheck at small shapes; the bf16 attention under racecheck
#   5. two ranks on the one GPU under the bundled mpirun: NCCL data and tensor parallelism and
#      ZeRO-1 against the one-process losses, or what NCCL said (scripts/gpu-check-ranks.sh)
# and prints a short table last. Logs and JSON go to $OUT (the device tool's folder) or
# /tmp/gpu-check. Fits in 8 minutes: every stage has its own cap, starts only while time is left
# (and says so when it is skipped), and the check goes on after a failed stage. Exit status: 0 when the tests and the sanitizer passed.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${OUT:-/tmp/gpu-check}
mkdir -p "$LOG"
RESULTS=$LOG/results.jsonl
: > "$RESULTS"
START=$SECONDS
status=0
note() { echo "gpu-check [$((SECONDS - START))s] $*"; }
record() { echo "$1" >> "$RESULTS"; }

# ---- the binaries and their libraries
BUNDLE=gpu-bundle/kervan-gpu.tar.gz
if [[ ! -f $BUNDLE ]]; then
  echo "gpu-check: $BUNDLE is missing: run scripts/gpu-bundle.sh on the build machine and carry gpu-bundle" >&2
  exit 2
fi
K=$(mktemp -d /tmp/kervan-gpu.XXXX)
tar -C "$K" -xzf "$BUNDLE"
# CUDA's libraries from the machine: the toolkit, else the wheels PyTorch brought (cuBLAS, NCCL);
# cuBLASLt lies beside cuBLAS in both.
cuda_libs=/usr/local/cuda/lib64
for pkg in cublas cuda_runtime nccl; do
  d=$(python3 -c "import nvidia.$pkg as m, os; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null) && cuda_libs+=":$d"
done
export LD_LIBRARY_PATH="$K/lib:$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export KERVAN_SOURCE_DIR=$PWD  # where tests/gpu finds its scripts
CARD=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)
note "card: $CARD; bundle of commit $(cat gpu-bundle/commit 2>/dev/null | cut -c1-12)"
"$K/bin/kervan" --version || { echo "gpu-check: the bundled kervan does not start (libraries above)" >&2; ldd "$K/bin/kervan" | grep "not found"; exit 1; }
# The CUDA module (cuBLAS, the runtime, NCCL) loads only for device runs: say now what it lacks.
missing=$(ldd "$K/bin/libkervan_cuda.so" | grep "not found")
[[ -z $missing ]] || note "the CUDA module lacks libraries, so every CUDA stage will fail: $missing"

# Every stage has its own cap and starts only when the time left allows it: the whole check ends by
# DEADLINE_S (480 s, GPU_CHECK_SECONDS overrides), inside one 10-minute device call. The order puts
# what a first run on a new machine most needs first: the tests, the command line, the speed, then
# the sanitizers and the two-rank stage (what was skipped is said, and recorded).
DEADLINE_S=${GPU_CHECK_SECONDS:-480}
# cap MAX MIN: seconds a stage may take, at most MAX and what is left before the deadline; fails
# (the caller skips the stage) when less than MIN is left.
cap() {
  local left=$((DEADLINE_S - (SECONDS - START)))
  (( left < $2 )) && return 1
  (( left > $1 )) && left=$1
  echo "$left"
}
skipped() { note "skipping $1: out of time"; record "{\"stage\": \"$2\", \"skipped\": \"out of time\"}"; }

# ---- 1. tests/gpu
note "tests/gpu"
KERVAN_REQUIRE_GPU=1 timeout "$(cap 200 0)" "$K/bin/gpu_tests" --gtest_output="xml:$LOG/gpu_tests.xml" > "$LOG/gpu_tests.log" 2>&1
rc=$?
tail -n 25 "$LOG/gpu_tests.log"
record "{\"stage\": \"gpu_tests\", \"rc\": $rc}"
(( rc != 0 )) && status=1

# ---- 2. the command line on the GPU: repeat, kill and resume, export
for precision in fp32 bf16; do
  t=$(cap 60 20) || { skipped "resume $precision" "resume_$precision"; continue; }
  note "kervan train on the GPU, $precision: repeat, SIGKILL and resume, export"
  # (deterministic: bit-for-bit comparisons must not hinge on cuBLASLt's split-K choices)
  timeout "$t" bash tests/gpu/resume.sh "$K/bin/kervan" --set "train.precision=\"$precision\"" \
    --set train.deterministic=true > "$LOG/resume_$precision.log" 2>&1
  rc=$?
  tail -n 4 "$LOG/resume_$precision.log"
  record "{\"stage\": \"resume_$precision\", \"rc\": $rc}"
  (( rc != 0 )) && status=1
done

# ---- 3. speed
if t=$(cap 45 20); then
  note "bf16 GEMM through cuBLAS"
  timeout "$t" python3 bench/torch_gpt_cuda.py --gemm 8192 >> "$RESULTS" 2> "$LOG/gemm.err" || tail -n 5 "$LOG/gemm.err"
fi

# The attention core alone at gpt2-small's shape (batch 16, 12 heads, seq 1024, head size 64): the
# bf16 tensor-core kernel causal (GPT) and not (BERT), and the exact fp32 kernel. Each line's FLOPs
# and bytes over the GEMM rate and the copy bandwidth give its floor (attention_flash.cu's head).
attention_bench() {  # precision causal
  local t
  t=$(cap 30 10) || { skipped "bench attention $1 $2" "attention_$1_$2"; return; }
  note "kervan bench attention $1 causal $2"
  timeout "$t" "$K/bin/kervan" bench attention --device cuda --precision "$1" --causal "$2" >> "$RESULTS" \
    2>> "$LOG/attention.err" || tail -n 3 "$LOG/attention.err"
}
attention_bench bf16 true
attention_bench bf16 false
attention_bench fp32 true

# kervan: the largest of the given micro-batches that fits (an out-of-memory exit tries the next),
# at the given precision of matrix products.
kervan_bench() {  # preset precision steps batches...
  local preset=$1 precision=$2 steps=$3 t
  shift 3
  local name=kervan_${preset}_$precision
  for b in "$@"; do
    t=$(cap 90 30) || { skipped "kervan $preset $precision" "$name"; return; }
    note "kervan bench train $preset $precision batch $b"
    if timeout "$t" "$K/bin/kervan" bench train --device cuda --precision "$precision" --preset "$preset" \
         --seq 1024 --batch "$b" --steps "$steps" --warmup-steps 1 > "$LOG/$name.json" 2> "$LOG/$name.err"; then
      tail -n 1 "$LOG/$name.json" >> "$RESULTS"
      return
    fi
    tail -n 3 "$LOG/$name.err"
    grep -q "out of device memory" "$LOG/$name.err" || return
  done
}
kervan_bench gpt2-small bf16 3 16 8 4
kervan_bench gpt2-medium bf16 2 16 8
kervan_bench gpt2-small fp32 2 16 8  # the fp32 products beside the bf16 ones

torch_bench() {  # preset batch
  local t
  t=$(cap 100 60) || { skipped "torch.compile $1" "torch_$1"; return; }
  note "torch.compile $1 batch $2"
  timeout "$t" python3 bench/torch_gpt_cuda.py --preset "$1" --batch "$2" --seq 1024 \
    --steps 10 --warmup-steps 3 >> "$RESULTS" 2> "$LOG/torch_$1.err" || tail -n 5 "$LOG/torch_$1.err"
}
torch_bench gpt2-small 16
torch_bench gpt2-medium 16

# ---- 4. compute-sanitizer on the small shapes: memcheck (every kernel, one small model), and
# racecheck on the tiled attention, whose warps share shared-memory tiles
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if t=$(cap 120 40); then
  note "compute-sanitizer memcheck"
  KERVAN_REQUIRE_GPU=1 timeout "$t" "$SAN" --tool memcheck --error-exitcode 99 --print-limit 20 \
    "$K/bin/gpu_tests" --gtest_filter='GpuTest.*:FlashAttention.Bf16IsDeterministic:GpuModelTest.LossAndGradients*:-GpuTest.AllocatorPeakAndOutOfMemoryMessage' \
    > "$LOG/memcheck.log" 2>&1
  rc=$?
  grep -E "ERROR SUMMARY|Invalid|out of bounds|PASSED|FAILED" "$LOG/memcheck.log" | tail -n 15
  record "{\"stage\": \"memcheck\", \"rc\": $rc}"
  (( rc != 0 )) && status=1
else
  skipped memcheck memcheck
fi
if t=$(cap 45 20); then
  note "compute-sanitizer racecheck (bf16 attention)"
  KERVAN_REQUIRE_GPU=1 timeout "$t" "$SAN" --tool racecheck --error-exitcode 99 --print-limit 20 \
    "$K/bin/gpu_tests" --gtest_filter='FlashAttention.Bf16IsDeterministic' > "$LOG/racecheck.log" 2>&1
  rc=$?
  grep -E "ERROR SUMMARY|hazard|PASSED|FAILED" "$LOG/racecheck.log" | tail -n 10
  record "{\"stage\": \"racecheck\", \"rc\": $rc}"
  (( rc != 0 )) && status=1
else
  skipped racecheck racecheck
fi

# ---- 5. two ranks, NCCL (records its own stages; never fails the check by itself)
if t=$(cap 100 40); then
  note "two ranks on one GPU (NCCL)"
  BUDGET_S=$t bash scripts/gpu-check-ranks.sh "$K" "$LOG" "$RESULTS"
else
  skipped "two ranks" two_ranks
fi

note "done in $((SECONDS - START)) s"
python3 - "$RESULTS" "$CARD" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
card = sys.argv[2]
# bf16 dense peak by datasheet (a lead, not a reading): H100/H200 SXM 989 TFLOP/s, A100 312.
peak = 989e12 if ("H100" in card or "H200" in card) else 312e12 if "A100" in card else None
gemm = next((r["tflops"] * 1e12 for r in rows if r.get("bench") == "gemm_bf16"), None)
stages = {r["stage"]: r.get("rc") for r in rows if "stage" in r}
print()
print(f"card: {card}")
skips = {r["stage"] for r in rows if r.get("skipped") == "out of time"}
verdict = lambda name, good: ("skipped (time)" if name in skips else good if stages.get(name) == 0
                              else f"FAILED (rc {stages.get(name)})")
print("tests/gpu: " + verdict("gpu_tests", "passed"), "| memcheck: " + verdict("memcheck", "clean"),
      "| racecheck: " + verdict("racecheck", "clean"),
      "| resume fp32: " + verdict("resume_fp32", "exact"), "| resume bf16: " + verdict("resume_bf16", "exact"))
def outcome(r):
    if "skipped" in r:
        return f"skipped ({r['skipped']})"
    return "ok" if r.get("rc") == 0 else f"rc {r.get('rc')}"
ranks = [f"{r['stage'][6:]} {outcome(r)}" for r in rows if r.get("stage", "").startswith("ranks_")]
skip = next((r.get("skipped") for r in rows if r.get("stage") == "two_ranks"), None)
print("two ranks (NCCL): " + (f"skipped: {skip}" if skip else ", ".join(ranks) or "-"))
if gemm:
    print(f"bf16 GEMM 8192^3 (cuBLAS via torch): {gemm / 1e12:.0f} TFLOP/s")
for r in rows:
    if r.get("bench") == "attention":
        print(f"attention {r['precision']} {'causal' if r['causal'] else 'full'} (gpt2-small's shape): "
              f"forward {r['forward_ms']:.3f} ms ({r['forward_tflops']:.0f} TFLOP/s), "
              f"backward {r['backward_ms']:.3f} ms ({r['backward_tflops']:.0f} TFLOP/s)")
print(f"{'model':12} {'impl':14} {'prec':>4} {'batch':>5} {'tokens/s':>10} {'ms/step':>8} {'MFU/peak':>8} {'MFU/GEMM':>8} {'peak GB':>8} {'ctx GB':>6}")
for r in rows:
    if "tokens_per_s" not in r:
        continue
    impl = r.get("impl", "?")
    prec = r.get("precision", "bf16")  # the torch rows: bf16 autocast
    model = r.get("preset") or f"{r.get('params', 0) / 1e6:.0f}M"
    fpt = r.get("flops_per_token", 0)
    flops = fpt * r["tokens_per_s"]
    mfu_peak = f"{flops / peak:.1%}" if peak and fpt else "-"
    mfu_gemm = f"{flops / gemm:.1%}" if gemm and fpt else "-"
    print(f"{model:12} {impl:14} {prec:>4} {r.get('batch', 0):>5} {r['tokens_per_s']:>10.0f} {r['ms_per_step']:>8.1f} "
          f"{mfu_peak:>8} {mfu_gemm:>8} {r.get('peak_device_mb', 0) / 1e3:>8.1f} {r.get('context_mb', 0) / 1e3:>6.2f}")
PY
exit $status
