#!/usr/bin/env node
// Turns a fetched corpus source into plain text for scripts/get-corpus.sh: documents separated by
// a line that is exactly <|endoftext|>, i.e. "doc1\n<|endoftext|>\ndoc2\n...docN\n". Each document
// loses its leading blank lines and trailing whitespace; empty documents are dropped.
//   node corpus-text.cjs OUT moby-dick PACKAGE_DIR      one document per chapter (+ front/back matter)
//   node corpus-text.cjs OUT sotu PACKAGE_DIR           one per State of the Union address, by year
//   node corpus-text.cjs OUT spam-assassin PACKAGE_DIR  one per e-mail: "Subject: ..." + body
//   node corpus-text.cjs OUT spam-labels PACKAGE_DIR    JSON lines {"text": e-mail as above, "label":
//                                                       "spam" | "ham"} (the package's spam-* / *-ham-* groups)
//   node corpus-text.cjs OUT dictd INDEX DICT_DZ        one per dictionary entry, in file order
//   node corpus-text.cjs OUT fortunes FILE...           one per fortune (strfile's "%" lines)
//   node corpus-text.cjs OUT files FILE...              one per file (.gz is decompressed)
// Prints the number of documents written.
"use strict";
const fs = require("fs");
const path = require("path");
const zlib = require("zlib");

const DELIM = "<|endoftext|>";
const [out, mode, ...args] = process.argv.slice(2);

const readText = (f) => {
  const b = fs.readFileSync(f);
  return (f.endsWith(".gz") || f.endsWith(".dz") ? zlib.gunzipSync(b) : b).toString("utf8");
};
const readJSON = (f) => JSON.parse(fs.readFileSync(f, "utf8"));
// The package's data files in the package's own order (data/file_list.json names the .txt twins).
const listed = (dir) => readJSON(path.join(dir, "data/file_list.json")).map((f) => path.join(dir, "data", f.replace(/\.txt$/, ".json")));

// Raw RFC 822 messages: the headers (mostly Received: lines) are dropped, except the subject.
const mailText = (raw) => {
  const mail = raw.replace(/\r\n?/g, "\n");
  const split = mail.indexOf("\n\n");
  const head = split < 0 ? mail : mail.slice(0, split);
  const subject = /^Subject:[ \t]*(.*(?:\n[ \t].*)*)/im.exec(head);
  const body = split < 0 ? "" : mail.slice(split + 2);
  return subject ? `Subject: ${subject[1].replace(/\n[ \t]+/g, " ")}\n\n${body}` : body;
};

// A labelled set rather than a corpus: one JSON object per line.
if (mode === "spam-labels") {
  const lines = listed(args[0]).map((f) => {
    const m = readJSON(f); // {id, group: "easy-ham-1" | "hard-ham-1" | "spam-2" | ..., text}
    return JSON.stringify({ text: mailText(m.text).trimEnd(), label: m.group.startsWith("spam") ? "spam" : "ham" });
  });
  fs.writeFileSync(out, lines.join("\n") + "\n");
  console.log(lines.length);
  process.exit(0);
}

const sources = {
  "moby-dick": ([dir]) => listed(dir).map((f) => {
    const c = readJSON(f); // {chapter: "1" | "Etymology" | ..., title, text}; the text lacks the chapter heading
    return /^\d+$/.test(c.chapter) ? `CHAPTER ${c.chapter}. ${c.title}\n\n${c.text}` : c.text;
  }),
  sotu: ([dir]) => fs.readdirSync(path.join(dir, "data")).filter((f) => f.endsWith(".json")).sort()
    .map((f) => readJSON(path.join(dir, "data", f)).text), // YEAR_NAME_PARTY.json: {year, name, party, text}
  "spam-assassin": ([dir]) => listed(dir).map((f) => mailText(readJSON(f).text)),
  dictd: ([index, dict]) => {
    // dictd index lines: headword TAB offset TAB length, numbers in base 64 (A-Za-z0-9+/). Several
    // headwords can share an entry: keep each distinct entry once, in file order.
    const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const b64 = (s) => [...s].reduce((n, c) => n * 64 + digits.indexOf(c), 0);
    const entries = new Map();
    for (const line of fs.readFileSync(index, "utf8").split("\n")) {
      const [, off, len] = line.split("\t");
      if (len !== undefined) entries.set(b64(off), b64(len));
    }
    const data = zlib.gunzipSync(fs.readFileSync(dict)); // dictzip is gzip with an extra header field
    return [...entries].sort((a, b) => a[0] - b[0]).map(([off, len]) => data.subarray(off, off + len).toString("utf8"));
  },
  fortunes: (files) => files.flatMap((f) => readText(f).split(/^%\n/m)),
  files: (files) => files.map(readText),
};

if (!sources[mode] || !out) {
  console.error(`usage: corpus-text.cjs OUT {${Object.keys(sources).join("|")}} ARGS...`);
  process.exit(2);
}
const docs = sources[mode](args).map((d) => d.replace(/^\s*\n/, "").trimEnd()).filter((d) => d.length > 0);
for (const d of docs) {
  if (d.split("\n").includes(DELIM)) throw new Error(`a ${mode} document contains a line '${DELIM}': ${d.slice(0, 80)}`);
}
fs.writeFileSync(out, docs.join(`\n${DELIM}\n`) + "\n");
console.log(docs.length);
