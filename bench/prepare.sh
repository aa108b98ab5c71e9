#!/usr/bin/env bash
# Speed and memory of `kervan prepare` on one input (file or folder), once per thread count, each
# into a fresh corpus under a temporary folder. Prints one JSON line per run:
#   {"input":..., "tokenizer":"gpt2", "threads":1, "mb":126.0, "seconds":..., "mb_per_s":...,
#    "peak_rss_mb":..., "documents":..., "tokens":..., "tokens_per_byte":...}
#   bench/prepare.sh INPUT [--tokenizer gpt2|bytes] [--threads "1 2"] [--kervan build/kervan]
# Needs /usr/bin/time (Debian: time) and GPT-2's files for gpt2 (scripts/get-tokenizer.sh gpt2).
set -euo pipefail
input=${1:?usage: bench/prepare.sh INPUT [--tokenizer gpt2|bytes] [--threads "1 2"] [--kervan PATH]}
shift
tokenizer=gpt2 threads="1 2" kervan=build/kervan
while (($#)); do
  case "$1" in
    --tokenizer) tokenizer=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --kervan) kervan=$2; shift 2 ;;
    *) echo "bench/prepare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -x /usr/bin/time ]] || { echo "bench/prepare.sh: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mb=$(find -L "$input" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.1f", s / 1e6 }')
for t in $threads; do
  rm -rf "$work/out"
  /usr/bin/time -v -o "$work/time" "$kervan" prepare --tokenizer "$tokenizer" --threads "$t" --out "$work/out" "$input" \
    2>"$work/log" || { cat "$work/log" >&2; exit 1; }
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$work/time")
  rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$work/time")
  counts=$("$kervan" corpus verify "$work/out")
  docs=$(grep -o '"documents":[0-9]*' <<<"$counts" | awk -F: '{ s += $2 } END { print s }')
  tokens=$(grep -o '"tokens":[0-9]*' <<<"$counts" | awk -F: '{ s += $2 } END { print s }')
  awk -v inp="$input" -v tok="$tokenizer" -v t="$t" -v mb="$mb" -v s="$secs" -v rss="$rss" -v d="$docs" -v n="$tokens" \
    'BEGIN { printf "{\"input\":\"%s\",\"tokenizer\":\"%s\",\"threads\":%d,\"mb\":%s,\"seconds\":%.2f,\"mb_per_s\":%.2f,\"peak_rss_mb\":%s,\"documents\":%d,\"tokens\":%d,\"tokens_per_byte\":%.4f}\n", inp, tok, t, mb, s, mb / s, rss, d, n, n / (mb * 1e6) }'
done
