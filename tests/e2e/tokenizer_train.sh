#!/usr/bin/env bash
# `kervan tokenizer train` end to end: the files are the same whatever the thread count, the
# trained folder encodes and decodes through `kervan tokenizer`, a small corpus stops early with a
# log line, and every bad input ends with exit code 2 and a message naming the file or option.
set -uo pipefail
kervan=${1:?usage: tokenizer_train.sh path/to/kervan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

# Real English (base-files ships GPL-3 on every Debian), twice, with a document separator.
{
  cat /usr/share/common-licenses/GPL-3
  printf '<|endoftext|>'
  cat /usr/share/common-licenses/GPL-3
} >"$work/corpus.txt"
bytes=$(wc -c <"$work/corpus.txt")

"$kervan" tokenizer train --vocab-size 600 --threads 1 --out "$work/t1" "$work/corpus.txt" 2>"$work/log1" ||
  fail "train, 1 thread: $(tail -3 "$work/log1")"
"$kervan" tokenizer train --vocab-size 600 --threads 2 --out "$work/t2" "$work/corpus.txt" 2>"$work/log2" ||
  fail "train, 2 threads: $(tail -3 "$work/log2")"
for f in encoder.json vocab.bpe; do
  cmp -s "$work/t1/$f" "$work/t2/$f" || fail "$f differs between 1 and 2 threads"
done
[[ "$(head -1 "$work/t1/vocab.bpe")" == "#version: 0.2" ]] || fail "vocab.bpe lacks its #version line"
merges=$(($(wc -l <"$work/t1/vocab.bpe") - 1))
((merges == 600 - 257)) || fail "vocab.bpe has $merges merges, expected 343"
grep -qF '"<|endoftext|>": 599}' "$work/t1/encoder.json" || fail "<|endoftext|> is not the last id (599)"

# Round trip through the binary with the trained folder; fewer tokens than bytes.
"$kervan" tokenizer encode --tokenizer "$work/t1" "$work/corpus.txt" >"$work/ids" 2>"$work/err" ||
  fail "encode: $(tail -3 "$work/err")"
tokens=$(wc -l <"$work/ids")
((tokens > 0 && tokens * 2 < bytes)) || fail "$tokens tokens for $bytes bytes"
"$kervan" tokenizer decode --tokenizer "$work/t1" "$work/ids" >"$work/back" 2>"$work/err" ||
  fail "decode: $(tail -3 "$work/err")"
cmp -s "$work/back" "$work/corpus.txt" || fail "decode(encode(corpus)) differs from the corpus"
[[ "$(printf 'a<|endoftext|>' | "$kervan" tokenizer encode --allow-special --tokenizer "$work/t1" -)" == \
  $'64\n599' ]] || fail "<|endoftext|> does not encode as the special token 599"

# A corpus that runs out of pairs: a log line, not an error.
echo "abc abc abd" >"$work/small.txt"
"$kervan" tokenizer train --vocab-size 1000 --out "$work/small" "$work/small.txt" 2>"$work/log" ||
  fail "small corpus: $(tail -3 "$work/log")"
grep -q "ran out of pairs" "$work/log" || fail "no log line says the corpus ran out of pairs: $(cat "$work/log")"
[[ -s "$work/small/encoder.json" ]] || fail "small corpus: no encoder.json"

# Bad inputs.
: >"$work/empty.txt"
mkdir "$work/full" && echo keep >"$work/full/notes.txt"
train() { "$kervan" tokenizer train "$@"; }
expect_error missing-input "$work/nope.txt" train --vocab-size 300 --out "$work/o" "$work/nope.txt"
expect_error empty-input "$work/empty.txt" train --vocab-size 300 --out "$work/o" "$work/empty.txt"
expect_error folder-input "$work/full: is a folder" train --vocab-size 300 --out "$work/o" "$work/full"
expect_error vocab-too-small "--vocab-size 256" train --vocab-size 256 --out "$work/o" "$work/corpus.txt"
expect_error vocab-too-large "--vocab-size 2147483649" train --vocab-size 2147483649 --out "$work/o" "$work/corpus.txt"
expect_error vocab-not-a-number "--vocab-size" train --vocab-size lots --out "$work/o" "$work/corpus.txt"
expect_error min-frequency-zero "--min-frequency 0" train --vocab-size 300 --min-frequency 0 --out "$work/o" "$work/corpus.txt"
expect_error out-not-empty "$work/full: --out folder is not empty" train --vocab-size 300 --out "$work/full" "$work/corpus.txt"
expect_error out-is-a-file "$work/corpus.txt: --out exists and is not a folder" \
  train --vocab-size 300 --out "$work/corpus.txt" "$work/small.txt"
[[ ! -e "$work/o" ]] || fail "a failed run left $work/o behind"
[[ "$(cat "$work/full/notes.txt")" == keep && $(ls "$work/full" | wc -l) -eq 1 ]] || fail "--out folder was changed"
leftovers=$(find "$work" -name '.*tmp-*' | wc -l)
((leftovers == 0)) || fail "temporary folders left behind"

finish tokenizer_train "train (1 = 2 threads), encode/decode round trip ($tokens tokens for $bytes bytes), early stop, 9 bad inputs: all ok"
