#!/usr/bin/env bash
# Installs every Debian package kervan needs to build, test and run its demo. Idempotent and quick
# when everything is present: apt is only touched for packages that are missing.
#   scripts/install-deps.sh          build + test + demo dependencies
#   scripts/install-deps.sh --torch  also PyTorch (only to regenerate fixtures or run bench/compare_torch.sh)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libopenblas-openmp-dev
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools
  python3-h5py python3-numpy  # the docs' h5py example runs in the tests (docs/checkpoint-format.md)
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  libssl-dev libxxhash-dev libzstd-dev zlib1g-dev zstd libnghttp2-dev
  bible-kjv
  time  # /usr/bin/time: peak memory in bench/prepare.sh and bench/bpe_train.sh
  gnuplot-nox  # kervan plot
  slurmctld slurmd slurm-client munge  # slurm/*.sbatch and the Slurm test (ctest -L slurm)
  openssl  # test certificates for the coordinator's TLS (tests/e2e/coordinator_cli.sh)
)
# node + npm fetch the GPT-2 vocabulary (scripts/get-tokenizer.sh) and run tiktoken, the reference
# the tokenizer test compares against; a node installed some other way is fine.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi
if [[ "${1:-}" == "--torch" ]]; then
  packages+=(python3-torch python3-numpy)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]]; then
  "${sudo[@]}" apt-get update -q
fi
"${sudo[@]}" apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
