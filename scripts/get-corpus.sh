#!/usr/bin/env bash
# Fetches a small real-English corpus into data/<name>.txt (from Debian packages only).
#   scripts/get-corpus.sh kjv      King James Bible, 4.3 MB (Debian bible-kjv)
set -euo pipefail
name=${1:?usage: scripts/get-corpus.sh kjv}
out_dir=${DATA_DIR:-data}
mkdir -p "$out_dir"
out="$out_dir/$name.txt"
[[ -s "$out" ]] && { echo "get-corpus: $out present"; exit 0; }
case "$name" in
  kjv)
    command -v bible >/dev/null || { echo "get-corpus: 'bible' missing: run scripts/install-deps.sh" >&2; exit 2; }
    bible -l100000 gen1:1-rev22:21 > "$out.tmp"
    ;;
  *)
    echo "get-corpus: unknown corpus '$name' (known: kjv)" >&2
    exit 2
    ;;
esac
mv "$out.tmp" "$out"
echo "get-corpus: wrote $out ($(wc -c < "$out") bytes)"
