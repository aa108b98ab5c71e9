# Shared by the e2e scripts: failure counting and the bad-input check. Source it after setting
# `work` (a scratch folder).
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect_exit CODE NAME WANT command...: the command exits with CODE and its stderr names WANT.
expect_exit() {
  local code=$1 name=$2 want=$3
  shift 3
  "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  [[ $rc -eq $code ]] || fail "$name: exit code $rc, expected $code ($(tail -3 "$work/err"))"
  grep -qF -- "$want" "$work/err" || fail "$name: stderr lacks '$want': $(tail -3 "$work/err")"
}

# expect_error NAME WANT command...: a user error (exit code 2) whose message names WANT.
expect_error() { expect_exit 2 "$@"; }

# small_text N FILE: N numbered lines of words that repeat, a text tiny models learn within a few
# steps (the e2e scripts' corpus).
small_text() {
  local i
  for i in $(seq 1 "$1"); do echo "Line $i of a small corpus, with words that repeat and repeat again for the model."; done >"$2"
}

# losses FILE.jsonl: the loss of every step in a metrics file, one per line.
losses() { grep -o '"loss":[^,]*' "$1" | cut -d: -f2; }

# same_losses NAME REFERENCE.jsonl OTHER.jsonl STEPS: OTHER has STEPS steps whose losses match
# REFERENCE's to 1e-5 relative (what differs between parallel layouts is fp32 summation order).
same_losses() {
  [[ $(losses "$3" | wc -l) -eq $4 ]] || { fail "$1: expected $4 steps"; return; }
  paste <(losses "$2") <(losses "$3") |
    awk -v run="$1" '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1) { print "FAIL: " run " step " NR-1 ": " $1 " vs " $2; bad = 1 } } END { exit bad }' ||
    fails=$((fails + 1))
}

# step_losses FILE.jsonl: "STEP LOSS" per line, the loss as logged (shortest round-trip float).
step_losses() { paste -d' ' <(grep -o '"step":[0-9]*' "$1" | cut -d: -f2) <(grep -o '"loss":[^,}]*' "$1" | cut -d: -f2); }

# losses_match NAME REFERENCE.jsonl OTHER.jsonl FIRST LAST TOL: OTHER logged each step FIRST..LAST
# exactly once, with REFERENCE's loss of that step: bit for bit (the same printed float) when TOL
# is 0, else within TOL relative.
losses_match() {
  local name=$1 ref=$2 other=$3 first=$4 last=$5 tol=$6
  awk -v run="$name" -v first="$first" -v last="$last" -v tol="$tol" '
    NR == FNR { want[$1] = $2; next }
    { seen[$1]++; if ($1 < first || $1 > last) next
      if (tol == 0 ? $2 != want[$1] : (d = $2 - want[$1]) * d > (tol * want[$1]) ^ 2) {
        print "FAIL: " run " step " $1 ": " $2 " vs " want[$1]; bad = 1 } }
    END { for (s = first; s <= last; ++s) if (seen[s] != 1) { print "FAIL: " run " logged step " s " " seen[s] + 0 " times"; bad = 1 }
          exit bad }' <(step_losses "$ref") <(step_losses "$other") || fails=$((fails + 1))
}

# finish NAME MESSAGE: the closing line, and the exit code.
finish() {
  if ((fails)); then
    echo "$1: $fails failed"
    exit 1
  fi
  echo "$1: $2"
}
