#!/usr/bin/env bash
# GPT-2 encoding speed: kervan (1 and 2 threads) vs tiktoken's WASM build from npm, same file,
# same run; one JSON line each. Both are timed on encoding alone (no loading), best of 3.
#   bench/tokenizer_compare.sh [FILE]   (default: data/kjv.txt, fetched by scripts/get-corpus.sh)
# tiktoken is installed into build/tokenizer-test-cache/npm (shared with the tokenizer test).
set -euo pipefail
cd "$(dirname "$0")/.."
kervan=${KERVAN:-build/kervan}
file=${1:-data/kjv.txt}
tiktoken_version=1.0.22
cache=${TIKTOKEN_CACHE:-build/tokenizer-test-cache/npm}
[[ "$file" != data/kjv.txt || -s "$file" ]] || scripts/get-corpus.sh kjv >&2
scripts/get-tokenizer.sh gpt2 >&2
if [[ "$(node -p "require('./$cache/node_modules/tiktoken/package.json').version" 2>/dev/null)" != "$tiktoken_version" ]]; then
  npm install --prefix "$cache" --no-audit --no-fund --silent "tiktoken@$tiktoken_version" >&2
fi
echo "# $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "node $(node --version)"
"$kervan" tokenizer bench --threads 1 "$file"
"$kervan" tokenizer bench --threads 2 "$file"
node bench/tiktoken_bench.cjs "$cache/node_modules/tiktoken" "$file"
