#!/usr/bin/env bash
# Builds kervan's GPU binaries here (nvcc, with this machine's Debian libraries) and gathers what
# they need to run on a bare GPU machine into one ignored folder to carry there:
#   gpu-bundle/kervan-gpu.tar.gz   bin/kervan, bin/gpu_tests and bin/libkervan_cuda.so (the CUDA
#                                  module both load from beside them; stripped) and lib/ with every
#                                  shared library they load except the C library itself and CUDA's
#                                  own (libcuda, libcudart, cuBLAS, cuBLASLt, NCCL come from the GPU
#                                  machine's toolkit or its Python wheels)
#                                  and ompi/, pmix/: Open MPI's mpirun with its plugins
#                                  (scripts/gpu-bundle-mpi.sh), for gpu-check's two-rank runs
# scripts/gpu-check.sh unpacks and runs it. Usage: scripts/gpu-bundle.sh [BUILD_DIR]  (default build,
# configured with CUDA on: KERVAN_CUDA=AUTO finds /usr/local/cuda/bin/nvcc).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
OUT=gpu-bundle
LIMIT_MB=60  # the whole working tree that travels must stay under 64 MiB

if [[ ! -f $BUILD/build.ninja ]]; then
  echo "gpu-bundle: $BUILD is not a configured build folder (run make configure, or cmake -S . -B $BUILD -G Ninja)" >&2
  exit 2
fi
if ! grep -q '^CMAKE_CUDA_COMPILER:' "$BUILD/CMakeCache.txt" || ! grep -q 'KERVAN_HAVE_CUDA\|kervan_cuda' "$BUILD/build.ninja"; then
  echo "gpu-bundle: $BUILD was configured without CUDA (is nvcc at /usr/local/cuda/bin?)" >&2
  exit 2
fi
nice -n 19 cmake --build "$BUILD" --target kervan gpu_tests kervan_cuda_module -j"${JOBS:-2}"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
cp "$BUILD/kervan" "$BUILD/gpu_tests" "$BUILD/libkervan_cuda.so" "$stage/bin/"
strip --strip-unneeded "$stage/bin/"*

# Everything ldd resolves, minus what must come from the target machine: the C library and loader
# (they must match its kernel and each other) and CUDA's libraries (they must match its driver).
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libresolv|libcuda\.so|libcudart|libcublas|libcublasLt|libnccl|libnvidia)'
for bin in "$stage/bin/"*; do
  ldd "$bin" | awk '/=>/ { print $1, $3 }'
done | sort -u | while read -r name path; do
  [[ $name =~ $skip ]] && continue
  [[ $path == not ]] && { echo "gpu-bundle: $name not found for the bundle" >&2; exit 1; }
  cp -L "$path" "$stage/lib/$name"
done
mpi_dirs=()
if bash scripts/gpu-bundle-mpi.sh "$stage"; then
  mpi_dirs=(ompi pmix)
else
  rm -rf "$stage/ompi" "$stage/pmix"
  echo "gpu-bundle: the bundle goes without mpirun (gpu-check will skip its two-rank runs)" >&2
fi
strip --strip-unneeded "$stage/lib/"* 2>/dev/null || true

mkdir -p "$OUT"
tar -C "$stage" -czf "$OUT/kervan-gpu.tar.gz" bin lib "${mpi_dirs[@]}"
git rev-parse HEAD > "$OUT/commit"
size_mb=$(( $(stat -c %s "$OUT/kervan-gpu.tar.gz") / 1000000 ))
echo "gpu-bundle: $OUT/kervan-gpu.tar.gz ${size_mb} MB ($(ls "$stage/lib" | wc -l) libraries, commit $(cut -c1-12 "$OUT/commit"))"
if (( size_mb > LIMIT_MB )); then
  echo "gpu-bundle: over ${LIMIT_MB} MB; it would not travel to the GPU machine" >&2
  exit 1
fi
# The binaries start here too; without a GPU they must say so clearly (the expected error).
dir=$(mktemp -d)
tar -C "$dir" -xzf "$OUT/kervan-gpu.tar.gz"
LD_LIBRARY_PATH="$dir/lib:/usr/local/cuda/lib64" "$dir/bin/kervan" --version
# The module travels and loads: without a GPU the bundled kervan gets as far as the driver check.
if ! nvidia-smi -L >/dev/null 2>&1; then
  rc=0
  msg=$(LD_LIBRARY_PATH="$dir/lib:/usr/local/cuda/lib64" "$dir/bin/kervan" bench train --device cuda \
          --preset gpt2-tiny --steps 1 2>&1 >/dev/null) || rc=$?
  if [[ $rc -ne 2 || $msg != *"no CUDA device"* || $msg == *"CUDA module"* ]]; then
    echo "gpu-bundle: the bundled CUDA module does not load (exit $rc): $msg" >&2
    exit 1
  fi
  echo "gpu-bundle: the bundled kervan loads its CUDA module (here: ${msg#kervan: error: })"
  # The bundled mpirun starts two ranks on its own (Debian's Open MPI hidden where this runs as
  # root), and each says the same.
  if [[ -x $dir/ompi/bin/mpirun ]]; then
    hide=()
    [[ $(id -u) == 0 ]] && unshare -m --propagation private true 2>/dev/null &&
      hide=(unshare -m --propagation private scripts/hide-system-mpi.sh)
    rc=0
    msg=$("${hide[@]}" env OPAL_PREFIX="$dir/ompi" PMIX_MCA_mca_base_component_path="$dir/pmix/lib/pmix" \
            OMPI_MCA_plm=isolated OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
            LD_LIBRARY_PATH="$dir/lib:/usr/local/cuda/lib64" \
            timeout 120 "$dir/ompi/bin/mpirun" --oversubscribe -np 2 "$dir/bin/kervan" bench train --device cuda \
            --preset gpt2-tiny --steps 1 2>&1 >/dev/null) || rc=$?
    if [[ $rc -ne 2 || $(grep -c "kervan: error: no CUDA device" <<< "$msg") -ne 2 ]]; then
      echo "gpu-bundle: the bundled mpirun does not run two ranks here (exit $rc): $msg" >&2
      exit 1
    fi
    how="with Debian's Open MPI in place"
    (( ${#hide[@]} )) && how="with Debian's Open MPI hidden"
    echo "gpu-bundle: the bundled mpirun runs two ranks $how, each: no CUDA device"
  fi
fi
rm -rf "$dir"
