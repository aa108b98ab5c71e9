#!/usr/bin/env bash
# The training progress bar: under a pseudo-terminal (script from bsdutils) kervan train draws
# "step N/STEPS [===>  ] P% | R tok/s | ETA T" on stderr, redrawn in place (\r, erase to the end of
# the line) with the per-step log lines scrolling above it intact, and erased at the end; with
# stderr not a terminal (a file) the output has no bar and no escape codes.
set -uo pipefail
kervan=${1:?usage: progress_bar.sh path/to/kervan}
work=$(mktemp -d)
trap '[[ -n ${KEEP:-} ]] || rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
command -v script >/dev/null || { echo "SKIP: no script(1) (bsdutils)"; exit 0; }

small_text 120 "$work/t.txt"
"$kervan" prepare --tokenizer bytes --val-documents 0 --out "$work/corpus" "$work/t.txt" >/dev/null 2>&1 || fail "prepare"
cat >"$work/c.toml" <<TOML
[model]
n_layer = 2
n_head = 4
d_model = 32
vocab_size = 257
[data]
path = "$work/corpus"
[train]
steps = 12
micro_batch = 4
seq_len = 32
threads = 1
[log]
every = 1
TOML
# 100 ms per step: the bar is redrawn (at most 5 times a second) while the run goes on.
export KERVAN_TEST_STEP_DELAY_MS=100
script -q -e -c "'$kervan' train --config '$work/c.toml'" /dev/null >"$work/tty.out" 2>&1 || fail "train under a pty: $(tail -3 "$work/tty.out")"
"$kervan" train --config "$work/c.toml" >"$work/plain.out" 2>"$work/plain.err" || fail "train: $(tail -3 "$work/plain.err")"

bars=$(grep -ao 'step [0-9]*/12 \[[=> ]*\] *[0-9.]*% | [0-9.kM-]* tok/s | ETA [0-9:-]*' "$work/tty.out" | wc -l)
((bars >= 3)) || fail "expected the bar drawn several times, saw $bars: $(head -c 600 "$work/tty.out" | od -c | head -20)"
grep -aq 'step 12/12 \[=*\] 100.0% | ' "$work/tty.out" || fail "no finished bar"
grep -aq $'\r\x1b\[K' "$work/tty.out" || fail "the bar is never erased in place"
# What the terminal shows: on each line (the pty ends them with \r\n), the text after its last
# carriage return, without the erase and colour codes.
screen=$(awk '{ sub(/\r$/, ""); n = split($0, part, "\r"); print part[n] }' "$work/tty.out" | sed $'s/\x1b\\[[0-9;]*[mK]//g')
[[ $(grep -c '^\[[0-9:]*\] info step  *[0-9]*/12 | loss ' <<<"$screen") -eq 12 ]] ||
  fail "the 12 per-step log lines are not intact on the screen: $(grep 'loss' <<<"$screen" | head -3)"
grep -q 'step [0-9]*/12 \[' <<<"$screen" && fail "a bar is left on the screen: $(grep 'step [0-9]*/12 \[' <<<"$screen")"
# Not a terminal: log lines only.
[[ $(grep -c '| loss ' "$work/plain.err") -eq 12 ]] || fail "plain run: expected 12 step lines"
grep -q $'\x1b\[K\|\r' "$work/plain.err" && fail "escape codes or carriage returns without a terminal"
grep -q '/12 \[' "$work/plain.err" && fail "a bar without a terminal"
finish progress_bar "bar drawn and erased in place under intact log lines on a pty; none without a terminal"
