# Shared by the coordinator e2e scripts (source after lib.sh): start a coordinator on a free
# loopback port, stop or kill it, and run status. Uses $kervan and $work.
export KERVAN_TOKEN=e2e-secret-$$

# start_coordinator NAME ARGS...: starts `kervan coordinator ARGS --address-file ...` in the
# background, logging to $work/NAME.log; sets coord_pid and coord_addr once it listens. A
# coordinator that does not start ends the script (every later check would fail with it).
start_coordinator() {
  local name=$1
  shift
  rm -f "$work/$name.addr"
  "$kervan" coordinator "$@" --address-file "$work/$name.addr" >>"$work/$name.log" 2>&1 &
  coord_pid=$!
  for _ in $(seq 1 200); do
    [[ -s "$work/$name.addr" ]] && break
    kill -0 "$coord_pid" 2>/dev/null || { fail "coordinator $name did not start: $(tail -3 "$work/$name.log")"; finish "$name" ""; }
    sleep 0.05
  done
  coord_addr=$(cat "$work/$name.addr")
  [[ -n "$coord_addr" ]] || { fail "coordinator $name wrote no address"; finish "$name" ""; }
}

stop_coordinator() {
  kill -TERM "$coord_pid" 2>/dev/null
  wait "$coord_pid" 2>/dev/null
}

# status_field FIELD: one number from `kervan status --json` (a top-level or prepare field).
status_field() {
  "$kervan" status --coordinator "$coord_addr" --json 2>/dev/null | grep -o "\"$1\":\"\\?[0-9-]*" | head -1 | grep -o '[0-9-]*$'
}
