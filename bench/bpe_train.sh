#!/usr/bin/env bash
# BPE training speed: times `kervan tokenizer train` on one text file and prints one JSON line
# (wall seconds, MB, MB/s, peak RSS from /usr/bin/time -v, and the counting / merging split from
# kervan's log).
#   bench/bpe_train.sh FILE [VOCAB_SIZE=16384] [THREADS=all cores]
set -euo pipefail
cd "$(dirname "$0")/.."
kervan=${KERVAN:-build/kervan}
file=${1:?usage: bench/bpe_train.sh FILE [VOCAB_SIZE] [THREADS]}
vocab=${2:-16384}
threads=${3:-$(nproc)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

/usr/bin/time -v "$kervan" tokenizer train --vocab-size "$vocab" --threads "$threads" --out "$work/tok" "$file" \
  2>"$work/log" || { cat "$work/log" >&2; exit 1; }
bytes=$(stat -c %s "$file")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$work/log")
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/log")
count_s=$(sed -n 's/.*info counted .* in \([0-9.]*\) s (.*/\1/p' "$work/log")
merge_s=$(sed -n 's/.*info learned .* in \([0-9.]*\) s$/\1/p' "$work/log")
distinct=$(sed -n 's/.*pieces (\([0-9]*\) distinct).*/\1/p' "$work/log")
merges=$(($(wc -l <"$work/tok/vocab.bpe") - 1))
awk -v f="$file" -v b="$bytes" -v w="$wall" -v r="$rss_kb" -v v="$vocab" -v t="$threads" -v c="$count_s" \
  -v m="$merge_s" -v d="$distinct" -v n="$merges" 'BEGIN {
  printf "{\"bench\":\"bpe_train\",\"file\":\"%s\",\"mb\":%.1f,\"vocab_size\":%d,\"merges\":%d,\"threads\":%d,", f, b / 1e6, v, n, t
  printf "\"distinct_pieces\":%d,\"seconds\":%.2f,\"count_s\":%s,\"merge_s\":%s,\"mb_per_s\":%.2f,\"peak_rss_mb\":%.0f}\n", d, w, c, m, b / 1e6 / w, r / 1024
}'
