#!/usr/bin/env bash
# `kervan prepare` end to end: .txt + .jsonl.gz + .jsonl.zst -> a corpus whose documents decode
# back to the input; identical shards for 1 and 2 threads; a rerun of a complete corpus does
# nothing; a killed run resumes keeping its finished shards and ends identical to an uninterrupted
# one; --val-documents; --from-llmc; GPT-2 (its files fetched into CACHE like tokenizer_diff.sh);
# bad input ends with exit code 2, a message naming the file, and no manifest.
#   prepare.sh path/to/kervan CACHE_DIR
set -uo pipefail
kervan=${1:?usage: prepare.sh path/to/kervan CACHE_DIR}
cache=${2:?usage: prepare.sh path/to/kervan CACHE_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
command -v zstd >/dev/null || { echo "prepare: 'zstd' missing: run scripts/install-deps.sh"; exit 1; }

# Inputs: one-line documents, so that sorted lines compare document multisets.
in="$work/in"
mkdir -p "$in/sub" "$in/more"
for i in $(seq 1 400); do printf 'plain text document %d, with some words\n<|endoftext|>\n' "$i"; done > "$in/a.txt"
for i in $(seq 1 300); do printf '{"id": %d, "text": "json document %d \\u00e9\\u4e2d"}\n' "$i" "$i"; done > "$work/b.jsonl"
gzip -c "$work/b.jsonl" > "$in/sub/b.jsonl.gz"
sed 's/json document/zstd document/' "$work/b.jsonl" | zstd -q -o "$in/sub/c.jsonl.zst"
: > "$in/more/empty.txt"
# The documents as `kervan corpus cat` prints them (one per line, delimiter lines dropped), sorted.
{ grep -v '^<|endoftext|>$' "$in/a.txt"; sed 's/.*"text": "\(.*\)"}/\1/' "$work/b.jsonl" | sed 's/\\u00e9/é/; s/\\u4e2d/中/'
  sed 's/.*"text": "\(.*\)"}/\1/' "$work/b.jsonl" | sed 's/\\u00e9/é/; s/\\u4e2d/中/; s/json document/zstd document/'; } |
  sort > "$work/want.txt"
docs_of() { "$kervan" corpus cat "$1" | grep -v '^<|endoftext|>$' | sort; }
# json_field DIR EXPR: EXPR over the manifest m (node: install-deps.sh installs it for the tokenizer tests).
json_field() { node -e "const m = JSON.parse(require('fs').readFileSync('$1/manifest.json')); const r = $2; console.log(Array.isArray(r) ? r.join(' ') : r)"; }
sum_docs() { echo "Object.values($1).flat().reduce((a, s) => a + s.documents, 0)"; }

# 1. A corpus, the same for 1 and 2 threads, that decodes back to the input.
"$kervan" prepare --tokenizer bytes --threads 1 --shard-tokens 5000 --val-fraction 0.1 --out "$work/c1" "$in" \
  2>"$work/log1" || fail "prepare: $(tail -3 "$work/log1")"
"$kervan" prepare --tokenizer bytes --threads 2 --shard-tokens 5000 --val-fraction 0.1 --out "$work/c2" "$in" \
  2>/dev/null || fail "prepare --threads 2"
for f in "$work"/c1/*.kvs; do cmp -s "$f" "$work/c2/$(basename "$f")" || fail "$(basename "$f") differs between 1 and 2 threads"; done
[[ $(ls "$work"/c1/*.kvs | wc -l) -eq $(ls "$work"/c2/*.kvs | wc -l) ]] || fail "shard counts differ between 1 and 2 threads"
docs_of "$work/c1" > "$work/got.txt"
cmp -s "$work/got.txt" "$work/want.txt" || fail "decoded documents differ from the input: $(diff "$work/want.txt" "$work/got.txt" | head -4)"
"$kervan" corpus verify "$work/c1" > "$work/verify" || fail "corpus verify"
grep -q '"train":{"shards":' "$work/verify" && grep -q '"val":{"shards":' "$work/verify" || fail "verify: $(cat "$work/verify")"
[[ $(json_field "$work/c1" "[m.tokenizer.vocab_size, m.tokenizer.eot_id, m.sources.length]") == "257 256 4" ]] ||
  fail "manifest tokenizer/sources: $(json_field "$work/c1" "JSON.stringify(m.tokenizer)")"
ndocs=$(json_field "$work/c1" "$(sum_docs m.splits)")
[[ $ndocs -eq 1000 ]] || fail "expected 1000 documents, manifest has $ndocs"
nval=$(json_field "$work/c1" "$(sum_docs '{v: m.splits.val}')")
((nval > 50 && nval < 160)) || fail "val holds $nval of 1000 documents for --val-fraction 0.1"
grep -q "more/empty.txt: no documents" "$work/log1" || fail "no warning for the empty file"
grep -q "prepared 1000 documents" "$work/log1" || fail "summary line: $(tail -1 "$work/log1")"

# 2. A rerun of a complete corpus with the same inputs and options does nothing (the thread count
# does not change the corpus); one with other options is refused, leaving the corpus as it is.
"$kervan" prepare --tokenizer bytes --threads 2 --shard-tokens 5000 --val-fraction 0.1 --out "$work/c1" "$in" \
  2>"$work/log" || fail "rerun exit code"
grep -q "already holds the corpus these inputs and options make" "$work/log" || fail "rerun: $(cat "$work/log")"
before=$(cd "$work/c1" && sha256sum * | sha256sum)
expect_error "rerun with other options" "already holds a complete corpus made from other inputs or options" \
  "$kervan" prepare --tokenizer bytes --out "$work/c1" "$in"
[[ $(cd "$work/c1" && sha256sum * | sha256sum) == "$before" ]] || fail "the refused rerun changed the corpus"

# 3. Killed after 2 of many work units, then resumed: finished shards kept, result identical.
export KERVAN_PREPARE_UNIT_BYTES=4000
args=(--tokenizer bytes --threads 2 --shard-tokens 3000 --out)
"$kervan" prepare "${args[@]}" "$work/full" "$in" 2>/dev/null || fail "prepare (uninterrupted)"
(KERVAN_PREPARE_KILL_AFTER_UNITS=2 "$kervan" prepare "${args[@]}" "$work/r" "$in"; :) 2>/dev/null
[[ ! -e "$work/r/manifest.json" ]] || fail "a killed run left a manifest"
kept=$(ls "$work"/r/*.kvs | wc -l)
((kept > 0)) || fail "the killed run left no finished shard"
touch -d '2001-01-01' "$work"/r/*.kvs
"$kervan" prepare "${args[@]}" "$work/r" "$in" 2>"$work/log" || fail "resume: $(tail -3 "$work/log")"
grep -q "kept $kept shards (2 work units) from an earlier run" "$work/log" || fail "resume log: $(grep kept "$work/log")"
[[ $(find "$work/r" -name '*.kvs' ! -newer "$work/r/manifest.json" -mtime +3650 | wc -l) -eq $kept ]] ||
  fail "resume rewrote kept shards"
for f in "$work"/full/*.kvs; do cmp -s "$f" "$work/r/$(basename "$f")" || fail "resumed $(basename "$f") differs"; done
[[ $(ls "$work"/r/*.kvs | wc -l) -eq $(ls "$work"/full/*.kvs | wc -l) ]] || fail "resumed shard count differs"
[[ ! -e "$work/r/.prepare" ]] || fail "unit records left after the manifest"
unset KERVAN_PREPARE_UNIT_BYTES

# 4. --val-documents takes exactly N documents.
"$kervan" prepare --tokenizer bytes --val-documents 7 --out "$work/v" "$in" 2>/dev/null || fail "--val-documents"
[[ $("$kervan" corpus cat --split val "$work/v" | grep -vc '^<|endoftext|>$') -eq 7 ]] || fail "--val-documents 7: val size"

# 5. --from-llmc: byte tokens, documents end at each newline (token 10).
printf 'first line\nsecond line\nthird' > "$work/l.txt"
"$kervan" prepare --tokenizer bytes --out "$work/l.bin" "$work/l.txt" 2>/dev/null || fail "legacy .bin"
cp "$work/l.bin" "$work/l2.bin"  # (one file given twice is refused: it would be counted twice)
"$kervan" prepare --from-llmc --tokenizer bytes-llmc --vocab-size 256 --eot-id 10 --out "$work/fl" "$work/l.bin" "$work/l2.bin" \
  2>/dev/null || fail "--from-llmc"
expect_error "--from-llmc: one file twice" "given twice" "$kervan" prepare --from-llmc --tokenizer bytes-llmc \
  --vocab-size 256 --eot-id 10 --out "$work/fl2" "$work/l.bin" "$work/l.bin"
[[ "$("$kervan" corpus verify "$work/fl")" == '{"train":{"shards":2,"documents":6,"tokens":56}}' ]] ||
  fail "--from-llmc: $("$kervan" corpus verify "$work/fl")"

# 6. GPT-2: documents decode back; the manifest names the vocabulary's hashes.
export KERVAN_DATA_DIR="$cache/data"
"$root/scripts/get-tokenizer.sh" gpt2 >/dev/null || { echo "prepare: get-tokenizer.sh gpt2 failed"; exit 1; }
"$kervan" prepare --threads 2 --out "$work/g" "$in" 2>/dev/null || fail "prepare gpt2"
docs_of "$work/g" > "$work/got.txt"
cmp -s "$work/got.txt" "$work/want.txt" || fail "gpt2: decoded documents differ from the input"
[[ $(json_field "$work/g" "[m.tokenizer.name, m.tokenizer.vocab_size, m.tokenizer.eot_id]") == "gpt2 50257 50256" ]] ||
  fail "gpt2 manifest tokenizer"
json_field "$work/g" "m.tokenizer.sha256" | grep -q '^196139668be63f3b.*:1ce1664773c50f3e' || fail "gpt2 sha256"

# 7. Bad input: exit code 2, the file named, no manifest, no shard under a final name left half-written.
no_corpus() { [[ ! -e "$1/manifest.json" ]] || fail "$2: manifest written"; ! ls "$1"/*.tmp >/dev/null 2>&1 || fail "$2: .tmp left"; }
mkdir -p "$work/bad"
printf '{"text": "ok"}\n{"txt": "no field"}\n{"text": "ok again"}\n' > "$work/bad/b.jsonl"
expect_error "bad line" "b.jsonl:2: no field \"text\"" "$kervan" prepare --tokenizer bytes --out "$work/o1" "$work/bad/b.jsonl"
no_corpus "$work/o1" "bad line"
"$kervan" prepare --tokenizer bytes --skip-bad-lines --out "$work/o2" "$work/bad/b.jsonl" 2>"$work/log" || fail "--skip-bad-lines"
[[ $(json_field "$work/o2" "[m.sources[0].skipped_lines, m.sources[0].documents]") == "1 2" ]] || fail "skipped_lines"
grep -q "skipped 1 bad lines" "$work/log" || fail "skip count not logged: $(tail -1 "$work/log")"
head -c 300 "$in/sub/b.jsonl.gz" > "$work/bad/t.jsonl.gz"
expect_error "truncated gzip" "t.jsonl.gz: truncated gzip stream" "$kervan" prepare --tokenizer bytes --out "$work/o3" "$work/bad/t.jsonl.gz"
no_corpus "$work/o3" "truncated gzip"
head -c 300 "$in/sub/c.jsonl.zst" > "$work/bad/t.jsonl.zst"
expect_error "truncated zstd" "t.jsonl.zst: truncated zstd stream" "$kervan" prepare --tokenizer bytes --out "$work/o4" "$work/bad/t.jsonl.zst"
no_corpus "$work/o4" "truncated zstd"
expect_error "missing input" "nothere.txt: cannot open input file" "$kervan" prepare --tokenizer bytes --out "$work/o5" "$work/nothere.txt"
echo x > "$work/bad/x.csv"
expect_error "unknown type" "x.csv: unknown input type" "$kervan" prepare --tokenizer bytes --out "$work/o6" "$work/bad/x.csv"
expect_error "no documents" "the input holds no documents" "$kervan" prepare --tokenizer bytes --out "$work/o7" "$in/more"
no_corpus "$work/o7" "no documents"
expect_error "bad fraction" "--val-fraction: Value 1.5 not in range 0 to 1" "$kervan" prepare --tokenizer bytes --val-fraction 1.5 --out "$work/o8" "$in"
expect_error "fraction 1" "--val-fraction must be at least 0 and below 1" "$kervan" prepare --tokenizer bytes --val-fraction 1 --out "$work/o8" "$in"
expect_error "no tokenizer" "run scripts/get-tokenizer.sh gpt2" env KERVAN_DATA_DIR="$work/none" "$kervan" prepare --out "$work/o9" "$in"

finish prepare "all checks passed"
