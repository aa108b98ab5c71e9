#!/usr/bin/env bash
# The CUDA backend is a module (libkervan_cuda.so next to the binary, core/cuda_module.h) that only
# train.device = "cuda" loads. A CPU run loads none of CUDA's libraries (the dynamic loader's own
# list of what it opened, LD_DEBUG=files, start-up and dlopen alike); a CUDA run on a machine that
# cannot have one ends with one "no CUDA device" sentence naming what is missing, exit 2 (under
# mpirun on every rank): no driver or no device, no module, a library that is not kervan's module, a module whose libraries are not
# found.
set -uo pipefail
kervan=${1:?usage: cuda_module.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

small_text 200 "$work/t.txt"
"$kervan" prepare --tokenizer bytes --val-documents 0 --out "$work/corpus" "$work/t.txt" >/dev/null 2>&1 || fail "prepare"
cat >"$work/c.toml" <<TOML
[model]
n_layer = 1
n_head = 2
d_model = 16
vocab_size = 257
[data]
path = "$work/corpus"
[train]
steps = 2
micro_batch = 2
seq_len = 16
threads = 1
TOML
cuda_libs='libkervan_cuda|libcublas|libcudart|libnccl|libcuda\.so'

# A CPU run: trains, and the loader never opened a CUDA library.
LD_DEBUG=files "$kervan" train --config "$work/c.toml" >"$work/out" 2>"$work/err" || fail "CPU run: $(tail -3 "$work/err")"
grep -q "peak resident memory" "$work/err" || fail "CPU run did not finish: $(tail -3 "$work/err")"
grep -q "file=libopenblas" "$work/err" || fail "LD_DEBUG lists no libraries: $(head -3 "$work/err")"
! grep -qE "file=.*($cuda_libs)" "$work/err" ||
  fail "a CPU run opened CUDA libraries: $(grep -E "file=.*($cuda_libs)" "$work/err" | head -3)"

module=$(dirname "$kervan")/libkervan_cuda.so
if [[ ! -f $module ]]; then
  # A build without CUDA (KERVAN_CUDA=OFF or no nvcc) has no module.
  expect_error "cuda in a build without CUDA" "no CUDA device: this kervan was built without CUDA" \
    "$kervan" train --config "$work/c.toml" --set 'train.device="cuda"'
  finish cuda_module "a CPU run opens no CUDA library; cuda in a build without it: one sentence, exit 2"
  exit 0
fi

if ! nvidia-smi -L >/dev/null 2>&1; then
  # This build's module, on a machine without a GPU: loaded, then the driver check says why.
  LD_DEBUG=files "$kervan" train --config "$work/c.toml" --set 'train.device="cuda"' >"$work/out" 2>"$work/err"
  rc=$?
  [[ $rc -eq 2 ]] || fail "cuda without a GPU: exit $rc: $(grep -v '^ *[0-9]*:' "$work/err" | tail -3)"
  grep -q "file=.*libkervan_cuda.so" "$work/err" || fail "the cuda run did not load the module"
  grep -q "^kervan: error: no CUDA device: " "$work/err" || fail "cuda without a GPU: $(grep -v '^ *[0-9]*:' "$work/err" | tail -3)"
  # Under mpirun every rank says it and the job ends with exit 2, never hanging in NCCL's set-up
  # (the ranks agree on the missing device first): train, and bench train with --tp and --zero.
  for cmd in "train --config $work/c.toml --set train.device=\"cuda\"" "bench train --device cuda --preset gpt2-tiny --steps 1 --tp 2" \
             "bench train --device cuda --preset gpt2-tiny --steps 1 --zero"; do
    # shellcheck disable=SC2086
    timeout 60 mpirun -np 2 --oversubscribe "$kervan" $cmd >"$work/out" 2>"$work/err"
    rc=$?
    [[ $rc -eq 2 ]] || fail "mpirun -np 2 kervan $cmd without a GPU: exit $rc: $(tail -3 "$work/err")"
    [[ $(grep -c "^kervan: error: no CUDA device: " "$work/err") -eq 2 ]] ||
      fail "mpirun -np 2 kervan $cmd without a GPU: not one sentence per rank: $(grep -v "^ *[0-9]*:" "$work/err" | head -5)"
  done
fi

# The binary alone in a folder: no module beside it.
mkdir "$work/alone" "$work/stranger" "$work/broken"
cp "$kervan" "$work/alone/kervan"
expect_error "no module" "no CUDA device: the CUDA module $work/alone/libkervan_cuda.so is missing" \
  "$work/alone/kervan" train --config "$work/c.toml" --set 'train.device="cuda"'
expect_error "bench without a module" "no CUDA device: the CUDA module" \
  "$work/alone/kervan" bench train --device cuda --preset gpt2-tiny --steps 1
# A shared library under the module's name that is not kervan's.
cp "$kervan" "$work/stranger/kervan"
cp -L "$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/ { print $NF; exit }')" "$work/stranger/libkervan_cuda.so"
expect_error "not the module" "is not kervan's CUDA module" \
  "$work/stranger/kervan" train --config "$work/c.toml" --set 'train.device="cuda"'
# A module whose own library is gone (as cuBLAS would be on a machine without CUDA's libraries).
if command -v cc >/dev/null; then
  cp "$kervan" "$work/broken/kervan"
  echo 'int gone(void) { return 1; }' >"$work/gone.c"
  echo 'int gone(void); int kervan_cuda_module(void) { return gone(); }' >"$work/m.c"
  cc -shared -fPIC -o "$work/libgone.so" "$work/gone.c" &&
    cc -shared -fPIC -o "$work/broken/libkervan_cuda.so" "$work/m.c" -L"$work" -lgone || fail "cc"
  rm -f "$work/libgone.so"
  expect_error "module without its libraries" "cannot load the CUDA module: libgone.so" \
    "$work/broken/kervan" train --config "$work/c.toml" --set 'train.device="cuda"'
fi

finish cuda_module "a CPU run opens no CUDA library; cuda without a device or module: one sentence, exit 2"
