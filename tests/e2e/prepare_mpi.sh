#!/usr/bin/env bash
# `kervan prepare` under mpirun -np 2: the work units are split over the ranks, rank 0 writes the
# manifest, and the corpus equals the single-process one (same documents, same shards); a bad
# input on either rank ends the job with exit code 2 and no manifest.
set -uo pipefail
kervan=${1:?usage: prepare_mpi.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
mpi=(mpirun -np 2 --oversubscribe)

mkdir -p "$work/in"
for f in 1 2 3 4 5; do
  for i in $(seq 1 200); do printf 'file %d document %d\n<|endoftext|>\n' "$f" "$i"; done > "$work/in/f$f.txt"
done
for i in $(seq 1 100); do printf '{"text": "json %d"}\n' "$i"; done | gzip > "$work/in/g.jsonl.gz"
args=(prepare --tokenizer bytes --threads 1 --shard-tokens 2000 --val-fraction 0.05)
export KERVAN_PREPARE_UNIT_BYTES=3000

"$kervan" "${args[@]}" --out "$work/one" "$work/in" 2>/dev/null || fail "single-process prepare"
"${mpi[@]}" "$kervan" "${args[@]}" --out "$work/two" "$work/in" 2>"$work/log" || fail "mpirun prepare: $(tail -3 "$work/log")"
grep -q "rank 1: " "$work/log" || fail "rank 1 did no work: $(cat "$work/log")"
[[ -e "$work/two/manifest.json" ]] || fail "no manifest under mpirun"
[[ "$("$kervan" corpus verify "$work/one")" == "$("$kervan" corpus verify "$work/two")" ]] ||
  fail "counts differ: $("$kervan" corpus verify "$work/one") vs $("$kervan" corpus verify "$work/two")"
cmp -s <("$kervan" corpus cat "$work/one" | sort) <("$kervan" corpus cat "$work/two" | sort) ||
  fail "the documents differ between 1 and 2 processes"
for f in "$work"/one/*.kvs; do cmp -s "$f" "$work/two/$(basename "$f")" || fail "$(basename "$f") differs"; done

# A bad line in the last file (rank 1's work unit with 2 ranks): every rank ends, exit code 2.
printf '{"text": "ok"}\nnot json\n' > "$work/in/z.jsonl"
expect_error "bad line under mpirun" "z.jsonl:2: not valid JSON" "${mpi[@]}" "$kervan" "${args[@]}" --out "$work/bad" "$work/in"
[[ ! -e "$work/bad/manifest.json" ]] || fail "manifest written after an error"

finish prepare_mpi "all checks passed"
