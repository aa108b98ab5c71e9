#!/usr/bin/env bash
# fp32 GEMM throughput on the shapes of real training steps, kervan's kernel next to OpenBLAS as
# the machine pins it and OpenBLAS with its AVX-512 kernels (OPENBLAS_CORETYPE=SkylakeX), in the
# same run. Prints a table (GFLOP/s, best of --reps) and one JSON line per measurement.
#
#   bench/gemm_shapes.sh [--kervan PATH (build/kervan)] [--threads T (1)] [--reps R (5)]
set -euo pipefail

kervan=build/kervan threads=1 reps=5
while (($#)); do
  case "$1" in
    --kervan) kervan="${2:?--kervan needs a value}"; shift 2 ;;
    --threads) threads="${2:?--threads needs a value}"; shift 2 ;;
    --reps) reps="${2:?--reps needs a value}"; shift 2 ;;
    *) echo "usage: bench/gemm_shapes.sh [--kervan PATH] [--threads T] [--reps R]" >&2; exit 2 ;;
  esac
done
[[ -x "$kervan" && ! -d "$kervan" ]] || { echo "gemm_shapes.sh: '$kervan' is not an executable (make build)" >&2; exit 1; }

# name | M,N,K | transposes: a bert-base step at batch 4 x 128 (512 rows, d 768, MLP 3072), an
# LSTM step of lstm-tiny at batch 16 (H 256: the recurrent [16,256] x [1024,256]^T and its
# gradient) and one token of gpt2-small decoding (a row against W^T).
shapes=(
  "x W^T, qkv (fwd)|512,2304,768|--trans-b"
  "x W^T, MLP up (fwd)|512,3072,768|--trans-b"
  "x W^T, MLP down (fwd)|512,768,3072|--trans-b"
  "dY W, MLP up (dX)|512,768,3072|"
  "dY^T X, MLP up (dW)|3072,768,512|--trans-a"
  "LSTM step h W_hh^T|16,1024,256|--trans-b"
  "LSTM step dG W_hh|16,256,1024|"
  "decode x W^T, qkv|1,2304,768|--trans-b"
  "decode output layer|1,50257,768|--trans-b"
  "square 2048|2048,2048,2048|"
)
gflops() { "$@" | tee -a "$jsonl" | sed -E 's/.*"gflops":([0-9.]+).*/\1/'; }
jsonl=$(mktemp)
trap 'rm -f "$jsonl"' EXIT
printf '%-26s %10s %14s %14s %11s\n' "shape (M,N,K)" "kervan" "OpenBLAS pin" "OpenBLAS 512" "own / pin"
for s in "${shapes[@]}"; do
  IFS='|' read -r name shape trans <<<"$s"
  args=(bench gemm --shape "$shape" $trans --threads "$threads" --reps "$reps")
  own=$(gflops "$kervan" "${args[@]}")
  pinned=$(KERVAN_GEMM=openblas gflops "$kervan" "${args[@]}")
  wide=$(KERVAN_GEMM=openblas OPENBLAS_CORETYPE=SkylakeX gflops "$kervan" "${args[@]}")
  awk -v n="$name" -v a="$own" -v b="$pinned" -v c="$wide" 'BEGIN { printf "%-26s %10.0f %14.0f %14.0f %10.2fx\n", n, a, b, c, a / b }'
done
cat "$jsonl"
