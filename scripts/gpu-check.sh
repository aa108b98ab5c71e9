#!/usr/bin/env bash
# The GPU check: one command for a lent GPU machine (CUDA toolkit, CMake, ninja and PyTorch, none
# of Debian's packages, no network). It needs gpu-bundle/kervan-gpu.tar.gz, which
# scripts/gpu-bundle.sh makes on a build machine (carry the ignored gpu-bundle folder along).
#   1. tests/gpu (every kernel against its CPU twin, whole models, 50 training steps)
#   2. the same at small shapes under compute-sanitizer memcheck; the bf16 attention under racecheck
#   3. speed: a bf16 cuBLAS GEMM (PyTorch), the attention core alone, kervan bench train --device
#      cuda for gpt2-small and gpt2-medium at seq 1024, and nanoGPT's recipe with torch.compile on
#      the same card
# and prints a short table last. Logs and JSON go to $OUT (the device tool's folder) or
# /tmp/gpu-check. Fits in 8 minutes: every stage has its own timeout and the check goes on
# after a failed stage. Exit status: 0 when the tests and the sanitizer passed.
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
# CUDA's libraries from the machine: the toolkit, else the wheels PyTorch brought (cuBLAS, NCCL).
cuda_libs=/usr/local/cuda/lib64
for pkg in cublas cuda_runtime nccl; do
  d=$(python3 -c "import nvidia.$pkg as m, os; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null) && cuda_libs+=":$d"
done
export LD_LIBRARY_PATH="$K/lib:$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
CARD=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)
note "card: $CARD; bundle of commit $(cat gpu-bundle/commit 2>/dev/null | cut -c1-12)"
"$K/bin/kervan" --version || { echo "gpu-check: the bundled kervan does not start (libraries above)" >&2; ldd "$K/bin/kervan" | grep "not found"; exit 1; }
# The CUDA module (cuBLAS, the runtime, NCCL) loads only for device runs: say now what it lacks.
missing=$(ldd "$K/bin/libkervan_cuda.so" | grep "not found")
[[ -z $missing ]] || note "the CUDA module lacks libraries, so every CUDA stage will fail: $missing"

# ---- 1. tests/gpu
note "tests/gpu"
KERVAN_REQUIRE_GPU=1 timeout 240 "$K/bin/gpu_tests" --gtest_output="xml:$LOG/gpu_tests.xml" > "$LOG/gpu_tests.log" 2>&1
rc=$?
tail -n 25 "$LOG/gpu_tests.log"
record "{\"stage\": \"gpu_tests\", \"rc\": $rc}"
(( rc != 0 )) && status=1

# ---- 2. compute-sanitizer memcheck on the small shapes (every kernel, one small model)
note "compute-sanitizer memcheck"
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
KERVAN_REQUIRE_GPU=1 timeout 150 "$SAN" --tool memcheck --error-exitcode 99 --print-limit 20 \
  "$K/bin/gpu_tests" --gtest_filter='GpuTest.*:FlashAttention.Bf16IsDeterministic:GpuModelTest.LossAndGradients*:-GpuTest.AllocatorPeakAndOutOfMemoryMessage' \
  > "$LOG/memcheck.log" 2>&1
rc=$?
grep -E "ERROR SUMMARY|Invalid|out of bounds|PASSED|FAILED" "$LOG/memcheck.log" | tail -n 15
record "{\"stage\": \"memcheck\", \"rc\": $rc}"
(( rc != 0 )) && status=1
# The tiled attention shares shared-memory tiles between warps: racecheck on its small shapes.
note "compute-sanitizer racecheck (bf16 attention)"
KERVAN_REQUIRE_GPU=1 timeout 60 "$SAN" --tool racecheck --error-exitcode 99 --print-limit 20 \
  "$K/bin/gpu_tests" --gtest_filter='FlashAttention.Bf16IsDeterministic' > "$LOG/racecheck.log" 2>&1
rc=$?
grep -E "ERROR SUMMARY|hazard|PASSED|FAILED" "$LOG/racecheck.log" | tail -n 10
record "{\"stage\": \"racecheck\", \"rc\": $rc}"
(( rc != 0 )) && status=1

# ---- 3. speed
note "bf16 GEMM through cuBLAS"
timeout 60 python3 bench/torch_gpt_cuda.py --gemm 8192 >> "$RESULTS" 2> "$LOG/gemm.err" || tail -n 5 "$LOG/gemm.err"

# The attention core alone at gpt2-small's shape (batch 16, 12 heads, seq 1024, head size 64): the
# bf16 tensor-core kernel causal (GPT) and not (BERT), and the exact fp32 kernel. Each line's FLOPs
# and bytes over the GEMM rate and the copy bandwidth give its floor (attention_flash.cu's head).
attention_bench() {  # precision causal
  note "kervan bench attention $1 causal $2"
  timeout 60 "$K/bin/kervan" bench attention --device cuda --precision "$1" --causal "$2" >> "$RESULTS" \
    2>> "$LOG/attention.err" || tail -n 3 "$LOG/attention.err"
}
attention_bench bf16 true
attention_bench bf16 false
attention_bench fp32 true

# kervan: the largest of the given micro-batches that fits (an out-of-memory exit tries the next).
kervan_bench() {  # preset steps batches...
  local preset=$1 steps=$2
  shift 2
  for b in "$@"; do
    note "kervan bench train $preset batch $b"
    if timeout 150 "$K/bin/kervan" bench train --device cuda --preset "$preset" --seq 1024 --batch "$b" \
         --steps "$steps" --warmup-steps 1 > "$LOG/kervan_$preset.json" 2> "$LOG/kervan_$preset.err"; then
      tail -n 1 "$LOG/kervan_$preset.json" >> "$RESULTS"
      return
    fi
    tail -n 3 "$LOG/kervan_$preset.err"
    grep -q "out of device memory" "$LOG/kervan_$preset.err" || return
  done
}
kervan_bench gpt2-small 3 16 8 4
kervan_bench gpt2-medium 2 16 8

torch_bench() {  # preset batch
  (( SECONDS - START > 400 )) && { note "skipping torch.compile $1: out of time"; return; }
  note "torch.compile $1 batch $2"
  timeout $((470 - (SECONDS - START))) python3 bench/torch_gpt_cuda.py --preset "$1" --batch "$2" --seq 1024 \
    --steps 10 --warmup-steps 3 >> "$RESULTS" 2> "$LOG/torch_$1.err" || tail -n 5 "$LOG/torch_$1.err"
}
torch_bench gpt2-small 16
torch_bench gpt2-medium 16

note "done in $((SECONDS - START)) s"
python3 - "$RESULTS" "$CARD" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
card = sys.argv[2]
# bf16 dense peak by datasheet (a lead, not a reading): H100/H200 SXM 989 TFLOP/s, A100 312.
peak = 989e12 if ("H100" in card or "H200" in card) else 312e12 if "A100" in card else None
gemm = next((r["tflops"] * 1e12 for r in rows if r.get("bench") == "gemm_bf16"), None)
stages = {r["stage"]: r["rc"] for r in rows if "stage" in r}
print()
print(f"card: {card}")
print("tests/gpu: " + ("passed" if stages.get("gpu_tests") == 0 else f"FAILED (rc {stages.get('gpu_tests')})"),
      "| memcheck: " + ("clean" if stages.get("memcheck") == 0 else f"FAILED (rc {stages.get('memcheck')})"),
      "| racecheck: " + ("clean" if stages.get("racecheck") == 0 else f"FAILED (rc {stages.get('racecheck')})"))
if gemm:
    print(f"bf16 GEMM 8192^3 (cuBLAS via torch): {gemm / 1e12:.0f} TFLOP/s")
for r in rows:
    if r.get("bench") == "attention":
        print(f"attention {r['precision']} {'causal' if r['causal'] else 'full'} (gpt2-small's shape): "
              f"forward {r['forward_ms']:.3f} ms ({r['forward_tflops']:.0f} TFLOP/s), "
              f"backward {r['backward_ms']:.3f} ms ({r['backward_tflops']:.0f} TFLOP/s)")
print(f"{'model':12} {'impl':14} {'batch':>5} {'tokens/s':>10} {'ms/step':>8} {'MFU/peak':>8} {'MFU/GEMM':>8} {'peak GB':>8}")
for r in rows:
    if "tokens_per_s" not in r:
        continue
    impl = r.get("impl", "?")
    model = r.get("preset") or f"{r.get('params', 0) / 1e6:.0f}M"
    fpt = r.get("flops_per_token", 0)
    flops = fpt * r["tokens_per_s"]
    mfu_peak = f"{flops / peak:.1%}" if peak and fpt else "-"
    mfu_gemm = f"{flops / gemm:.1%}" if gemm and fpt else "-"
    print(f"{model:12} {impl:14} {r.get('batch', 0):>5} {r['tokens_per_s']:>10.0f} {r['ms_per_step']:>8.1f} "
          f"{mfu_peak:>8} {mfu_gemm:>8} {r.get('peak_device_mb', 0) / 1e3:>8.1f}")
PY
exit $status
