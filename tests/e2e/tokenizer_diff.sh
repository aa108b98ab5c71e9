#!/usr/bin/env bash
# Differential test of `kervan tokenizer` against tiktoken (npm, its WASM build), the reference for
# GPT-2's ids: adversarial strings (every Unicode class, whitespace kinds, contractions, emoji,
# control characters, ill-formed UTF-8, long words, <|endoftext|>), random strings, a sample of
# all code points and the King James Bible must encode to exactly tiktoken's ids and decode back;
# the Unicode class table must equal tiktoken's for every code point; bad tokenizer files and
# bad ids must end with exit code 2 and a message naming the file.
# Fetches what it needs into CACHE (tiktoken via npm, GPT-2's files via scripts/get-tokenizer.sh,
# the Bible via scripts/get-corpus.sh); later runs reuse it.
#   tokenizer_diff.sh path/to/kervan CACHE_DIR
set -uo pipefail
kervan=${1:?usage: tokenizer_diff.sh path/to/kervan CACHE_DIR}
cache=${2:?usage: tokenizer_diff.sh path/to/kervan CACHE_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
tiktoken_version=1.0.22
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "tokenizer_diff: '$tool' missing: run scripts/install-deps.sh"; exit 1; }
done
mkdir -p "$cache"
tiktoken="$cache/npm/node_modules/tiktoken"
if [[ "$(node -p "require('$tiktoken/package.json').version" 2>/dev/null)" != "$tiktoken_version" ]]; then
  npm install --prefix "$cache/npm" --no-audit --no-fund --silent "tiktoken@$tiktoken_version" ||
    { echo "tokenizer_diff: npm install tiktoken@$tiktoken_version failed"; exit 1; }
fi
export KERVAN_DATA_DIR="$cache/data"
"$root/scripts/get-tokenizer.sh" gpt2 || { echo "tokenizer_diff: get-tokenizer.sh gpt2 failed"; exit 1; }
DATA_DIR="$cache/corpus" "$root/scripts/get-corpus.sh" kjv || { echo "tokenizer_diff: get-corpus.sh kjv failed"; exit 1; }
kjv="$cache/corpus/kjv.txt"

# 1. The class table kervan's scanner uses is tiktoken's, code point for code point.
node "$root/datasets/tokenizer/gen_unicode_classes.cjs" "$tiktoken" > "$work/classes.inc" || fail "gen_unicode_classes.cjs"
cmp -s "$work/classes.inc" "$root/datasets/tokenizer/unicode_classes.inc" ||
  fail "datasets/tokenizer/unicode_classes.inc differs from tiktoken $tiktoken_version's classes (regenerate it): $(diff "$work/classes.inc" "$root/datasets/tokenizer/unicode_classes.inc" | head -5)"

# 2. Every case: the same ids as tiktoken, and decode gives the input back.
node "$root/tests/e2e/tokenizer_cases.cjs" "$tiktoken" "$work/cases" "$kjv" || { echo "tokenizer_cases.cjs failed"; exit 1; }
cases=0
for txt in "$work"/cases/*.txt; do
  c=${txt%.txt}
  cases=$((cases + 1))
  # shellcheck disable=SC2046
  "$kervan" tokenizer encode $(cat "$c.args") "$txt" > "$c.got" 2> "$c.err" || { fail "$(basename "$c"): exit $?: $(cat "$c.err")"; continue; }
  if ! cmp -s "$c.got" "$c.ids"; then
    fail "$(basename "$c") $(cat "$c.args"): ids differ from tiktoken (input $(head -c 60 "$txt" | od -An -c | head -2 | tr -s ' '))"
    diff "$c.ids" "$c.got" | head -6
    continue
  fi
  if [[ -e "$c.roundtrip" ]]; then
    "$kervan" tokenizer decode "$c.got" > "$c.back" 2> "$c.err" || { fail "$(basename "$c") decode: $(cat "$c.err")"; continue; }
    cmp -s "$c.back" "$txt" || fail "$(basename "$c"): decode(encode(x)) != x"
  fi
done
echo "tokenizer_diff: $cases cases compared with tiktoken $tiktoken_version"

# 3. Threads do not change the ids (the Bible, and a case with specials and long lines).
"$kervan" tokenizer encode --threads 2 "$kjv" > "$work/kjv2.ids" && cmp -s "$work/kjv2.ids" "$(ls "$work"/cases/*.ids | tail -1)" ||
  fail "--threads 2 changed the ids of kjv.txt"
for i in 1 2 3 4 5 6 7 8; do cat "$kjv"; echo "<|endoftext|>"; done > "$work/big.txt"
"$kervan" tokenizer encode --allow-special "$work/big.txt" > "$work/big1.ids"
"$kervan" tokenizer encode --allow-special --threads 2 "$work/big.txt" > "$work/big2.ids"
cmp -s "$work/big1.ids" "$work/big2.ids" || fail "--threads 2 changed the ids of a text with <|endoftext|>"
[[ $(grep -c '^50256$' "$work/big1.ids") -eq 8 ]] || fail "expected 8 <|endoftext|> tokens"

# 4. A tokenizer folder (Hugging Face style) works like the installed gpt2.
mkdir -p "$work/hf"
cp "$KERVAN_DATA_DIR/tokenizers/gpt2/"{encoder.json,vocab.bpe} "$work/hf/"
echo "Hello folder tokenizer" > "$work/hello.txt"
[[ "$("$kervan" tokenizer encode --tokenizer "$work/hf" "$work/hello.txt")" == "$("$kervan" tokenizer encode "$work/hello.txt")" ]] ||
  fail "--tokenizer DIR gave other ids than gpt2"

# 5. bench prints one JSON line with the speed.
"$kervan" tokenizer bench --reps 1 "$work/hello.txt" | grep -q '"mb_per_s":' || fail "tokenizer bench: no mb_per_s"

# 6. Mistakes: exit code 2 and one clear message.
expect_error "not installed" "run scripts/get-tokenizer.sh gpt2" \
  env KERVAN_DATA_DIR="$work/empty" "$kervan" tokenizer encode "$work/hello.txt"
mkdir -p "$work/bad/tokenizers/gpt2"
cp "$work/hf/encoder.json" "$work/bad/tokenizers/gpt2/"
sed 's/^t h$/h t/' "$work/hf/vocab.bpe" > "$work/bad/tokenizers/gpt2/vocab.bpe"
expect_error "wrong hash" "gpt2/vocab.bpe: SHA-256 is" \
  env KERVAN_DATA_DIR="$work/bad" "$kervan" tokenizer encode "$work/hello.txt"
rm "$work/hf/vocab.bpe"
expect_error "folder lacks vocab.bpe" "hf/vocab.bpe: missing" "$kervan" tokenizer encode --tokenizer "$work/hf" "$work/hello.txt"
expect_error "no such tokenizer" "nothere: not a tokenizer name" "$kervan" tokenizer encode --tokenizer "$work/nothere" "$work/hello.txt"
printf '15496\n99999999\n' > "$work/badid.txt"
expect_error "id outside vocab" "badid.txt:2: token id 99999999 is not in the vocabulary (50257 tokens)" \
  "$kervan" tokenizer decode "$work/badid.txt"
printf '15496\nhello\n' > "$work/notid.txt"
expect_error "not an id" "notid.txt:2: expected one token id per line" "$kervan" tokenizer decode "$work/notid.txt"
expect_error "missing input" "nothere.txt: cannot open input file" "$kervan" tokenizer encode "$work/nothere.txt"

finish tokenizer_diff "all checks passed"
