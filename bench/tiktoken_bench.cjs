// tiktoken's (npm, WASM) gpt2 encoding speed on a file, the peer of `kervan tokenizer bench`:
//   node bench/tiktoken_bench.cjs PATH/TO/node_modules/tiktoken FILE [REPS]
// Times encode_ordinary on the decoded text (best of REPS, after one untimed run) and prints one
// JSON line in the same shape as kervan's.
const fs = require("fs");
const path = require("path");
const [tiktokenDir, file, repsArg] = process.argv.slice(2);
const { get_encoding } = require(path.resolve(tiktokenDir, "tiktoken.cjs"));
const version = require(path.resolve(tiktokenDir, "package.json")).version;
const bytes = fs.readFileSync(file);
const text = new TextDecoder().decode(bytes);
const enc = get_encoding("gpt2");
let tokens = enc.encode_ordinary(text).length;
let best = Infinity;
for (let r = 0; r < Number(repsArg || 3); r++) {
  const t0 = process.hrtime.bigint();
  tokens = enc.encode_ordinary(text).length;
  best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
}
enc.free();
console.log(JSON.stringify({
  bench: "tokenizer", impl: `tiktoken-wasm ${version}`, tokenizer: "gpt2", file, bytes: bytes.length, tokens,
  threads: 1, seconds: best, mb_per_s: bytes.length / best / 1e6, tokens_per_s: tokens / best,
}));
