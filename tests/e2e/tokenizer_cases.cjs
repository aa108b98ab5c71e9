// Writes the cases of tests/e2e/tokenizer_diff.sh with tiktoken's answers:
//   node tokenizer_cases.cjs TIKTOKEN_DIR OUT_DIR [REAL_TEXT_FILE...]
// For case N: N.txt (the input bytes), N.args (extra flags for `kervan tokenizer encode`),
// N.ids (tiktoken's gpt2 ids, one per line) and, when the input is valid UTF-8, N.roundtrip.
// tiktoken reads the bytes through TextDecoder, which turns ill-formed UTF-8 into U+FFFD the
// same way kervan does.
const fs = require("fs");
const path = require("path");
const [tiktokenDir, outDir, ...realFiles] = process.argv.slice(2);
const { get_encoding } = require(path.resolve(tiktokenDir, "tiktoken.cjs"));
const enc = get_encoding("gpt2");
fs.mkdirSync(outDir, { recursive: true });

let n = 0;
function emit(bytes, allowSpecial) {
  const name = path.join(outDir, String(n++).padStart(4, "0"));
  const text = new TextDecoder().decode(bytes);
  const ids = allowSpecial ? enc.encode(text, "all") : enc.encode(text, [], []);
  fs.writeFileSync(name + ".txt", bytes);
  fs.writeFileSync(name + ".args", allowSpecial ? "--allow-special" : "");
  fs.writeFileSync(name + ".ids", Array.from(ids).join("\n") + (ids.length ? "\n" : ""));
  if (Buffer.from(text, "utf8").equals(Buffer.from(bytes))) fs.writeFileSync(name + ".roundtrip", "");
}
const str = (s, allowSpecial = false) => emit(Buffer.from(s, "utf8"), allowSpecial);

// A deterministic PRNG (mulberry32), so the cases are the same on every run.
let seed = 12345;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

const fixed = [
  "", " ", "\n", "a", "Hello world", "Hello  world", "Hello   world\n\n\nfoo", "abc   ", "   abc", "  \n\n  ",
  // contractions, upper case and unicode apostrophes
  "I'm you're he's we've they'll I'd can't won't", "I'M YOU'RE HE'S WE'VE THEY'LL I'D", "He'S 'Tis 'T",
  "don\u2019t it\u2019s l\u2019\u00e9tat \u02bcs \uff07s", "'s's'''s 'll ' ll", "x'sy 'sam 'red 'llama", "''''", "' s",
  "!'s ?'re 1've", " 's", "'", "'\n's",
  // whitespace of every kind
  "\u00a0", "a\u00a0b", "a \u00a0b", "\u3000x\u3000 y", "a\u2028b\u2029c", "\t\t x", "\r\n\r\nx\r\n", "\v\f x",
  "a\u0085b", "\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f x",
  "zero\u200bwidth\ufeffbom", "x \u00a0 \u3000  y", "end with nbsp\u00a0", "\u00a0\u00a0\u00a0word",
  // runs of spaces and newlines
  ...Array.from({ length: 12 }, (_, k) => " ".repeat(k + 1) + "x" + " ".repeat(k) + "\n".repeat(k) + "y"),
  "\n\n\n\n", " \n \n  \n   x", "x\n \n", "a \n\tb", "   ", "\t", "x   \n   ", " \u00a0 \u00a0x",
  // numbers
  "123456789", "1,234.56", "abc123def", "x\u00b2\u00b3", "\u216b \u2177", "\u0663\u0664\u0665 \u0661\u0662",
  "\u0967\u0968\u0969", "\u00bd\u00bc", " 1 2  3", "2024-01-01T12:00:00Z", "3.14159e-10", "0xDEADBEEF",
  // letters of many scripts, combining marks
  "\u03b1\u03b2\u03b3 \u0394\u03b9\u03ac", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
  "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645", "\u05e9\u05dc\u05d5\u05dd",
  "\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e", "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
  "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8", "\u4e2d\u6587\u5b57\u7b26\u4e32",
  "e\u0301 caf\u00e9 cafe\u0301", "a\u0300\u0301\u0302\u0303 x", "Z\u0351\u036b\u0343\u036a\u0302a\u0310l\u0357g\u0344o",
  "\u01c5 \u01c8 \u02b0\u02b1", "\u1e9e\u00df \u0130i\u0131", "\ud835\udc00\ud835\udc01 \ud835\udfce",
  // punctuation and symbols
  "!!!???...", "\u2014\u2013-", "\u00ab\u00bb\u201e\u201c\u201d", "$\u20ac\u00a3\u00a5", "+-*/=<>",
  "\u00a9\u00ae\u2122", "\u2211\u222b\u221a\u221e", "#include <stdio.h>\nint main() { return 0; }\n",
  '{"key": [1, 2.5, "v"], "nested": {"a": null}}', "https://example.com/path?q=1&r=two#frag", "user@example.org",
  // emoji: ZWJ sequences, skin tones, flags, keycaps, variation selectors
  "\ud83d\udc4d", "\ud83d\udc4d\ud83c\udffd", "\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67\u200d\ud83d\udc66",
  "\ud83c\udff3\ufe0f\u200d\ud83c\udf08", "\u2764\ufe0f", "\ud83c\uddfa\ud83c\uddf8\ud83c\udde9\ud83c\uddea",
  "\ud83d\ude00\ud83d\ude03\ud83d\ude04 hi \ud83d\ude00", "1\ufe0f\u20e3", "a\ud83d\udc4db \ud83d\udc4d1",
  // control characters (U+001C-U+001F are not White_Space for tiktoken's regex)
  "\x00\x01\x1f\x7f", "a\x00b", "\x1c\x1d\x1e\x1f x", "\x1b[31mred\x1b[0m", "\x08\x07 bell",
  // very long words
  "a".repeat(5000), "ab".repeat(3000), "\ud83e\udd16".repeat(500), "1234567890".repeat(300), "=".repeat(1000),
  " ".repeat(3000) + "x", "\n".repeat(2000), "Supercalifragilisticexpialidocious".repeat(40),
  "pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
];
for (const s of fixed) str(s);

// <|endoftext|>, with and without allow-special
const eot = "<|endoftext|>";
for (const s of [eot, `a${eot}b`, `Hello ${eot} world`, `  ${eot}  `, `${eot}${eot}`, "<|endoftext|",
                 `${eot}\n\nNext document`, "<|endo", `x  ${eot}`, `end\n${eot}`, `${eot}'s`]) {
  str(s, false);
  str(s, true);
}

// Ill-formed UTF-8: lone continuation bytes, truncated sequences, overlongs, surrogates, > U+10FFFF.
for (const bytes of [
  [0xff], [0x41, 0x80, 0x42], [0xc3, 0x28], [0xe2, 0x82, 0x41], [0xed, 0xa0, 0x80, 0x20, 0x61],
  [0xf0, 0x9f, 0x98], [0xc0, 0xaf, 0xe0, 0x80, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0x20, 0xfe, 0x20, 0xc2], [0x68, 0x69, 0xe2, 0x82, 0xac, 0xe2, 0x82],
]) emit(Buffer.from(bytes), false);

// Fuzz: random strings drawn from characters of every class, glued into a few cases.
const pool = [
  ..." \t\n\r\u00a0\u3000\u2028\u0085\u000b", ..."aZ\u00e9\u03b1\u0416\u4e2d\u3042\ud55c", ..."09\u00b2\u0663\u2167\u00bd",
  ..."'\u2019!.,-_\"()[]{}<>|/\\@#$%^&*+=~`;:?", ..."\u0301\u0308\u200d\ufe0f", "\ud83d\udc4d", "\ud83c\udffd",
  "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "<|endoftext|>", "\x00", "\x1f", "\x7f", "  ", "\n\n",
];
for (let c = 0; c < 8; c++) {
  let s = "";
  for (let i = 0; i < 4000; i++) s += pick(pool);
  str(s, c % 2 === 1);
}

// Many code points in all kinds of company: every one below U+3400, then every 7th up to
// U+10FFFF (tokenizer_diff.sh checks the class table for every code point separately).
{
  let s = "";
  for (let cp = 0; cp < 0x110000; cp += cp < 0x3400 ? 1 : 7) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const ch = String.fromCodePoint(cp);
    s += ch + ch + " " + ch + "a" + ch + "1 " + ch + "'s" + ch + "\n";
  }
  str(s);
}

for (const f of realFiles) emit(fs.readFileSync(f), false);
enc.free();
console.log(`tokenizer_cases: wrote ${n} cases to ${outDir}`);
