#!/usr/bin/env bash
# Runs the bf16 attention kernels (core/cuda/attention_flash.cu) on the CPU, for machines without
# a GPU: the kernels' own source with CUDA replaced by shim.h (each block's 128 threads as
# std::threads, barriers for __syncthreads/__syncwarp, WMMA fragments as full 16x16 products),
# against a double reference on random problems (driver.inc): every output written, errors within
# the GPU test's bounds, and the device asserts on (fragment alignment, shared-memory layout).
# It checks indexing, masking, tiling and barrier placement; not the hardware's fragment layout,
# timing or anything about the real compiler. Modes:
#   run.sh        ten small problems (T 1..200) under AddressSanitizer and UBSan (~3 min here)
#   run.sh tsan   four of them under ThreadSanitizer: a missing barrier shows as a race
#   run.sh big    T = 1024, optimised, no sanitizer (~5 min here)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 "$here/generate.py" "$root" "$out/flash_emulate.cpp"
mode=${1:-asan}
case $mode in
  asan) flags=(-O1 -g -fsanitize=address,undefined) args=(1) ;;
  tsan) flags=(-O1 -g -fsanitize=thread) args=(3 small) ;;
  big) flags=(-O2) args=(2 big) ;;
  *) echo "usage: run.sh [asan|tsan|big]" >&2; exit 2 ;;
esac
g++ -std=c++20 "${flags[@]}" -pthread -I"$here" "$out/flash_emulate.cpp" -o "$out/flash_emulate_$mode"
TSAN_OPTIONS="halt_on_error=1" "$out/flash_emulate_$mode" "${args[@]}"
