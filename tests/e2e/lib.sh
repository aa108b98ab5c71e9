# Shared by the e2e scripts: failure counting and the bad-input check. Source it after setting
# `work` (a scratch folder).
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect_error NAME WANT command...: the command exits with code 2 and its stderr names WANT.
expect_error() {
  local name=$1 want=$2
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  [[ $rc -eq 2 ]] || fail "$name: exit code $rc, expected 2 ($(tail -3 "$work/err"))"
  grep -qF -- "$want" "$work/err" || fail "$name: stderr lacks '$want': $(tail -3 "$work/err")"
}

# finish NAME MESSAGE: the closing line, and the exit code.
finish() {
  if ((fails)); then
    echo "$1: $fails failed"
    exit 1
  fi
  echo "$1: $2"
}
