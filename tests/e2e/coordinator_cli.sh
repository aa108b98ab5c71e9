#!/usr/bin/env bash
# `kervan coordinator` and `kervan status` as processes: status of a running coordinator (table
# and JSON), a SIGKILLed coordinator restarted from its journal keeps its state, TLS, and every bad
# input ends with exit 2 and one message naming the file, address or key (an unreachable
# coordinator: exit 4).
set -uo pipefail
kervan=${1:?usage: coordinator_cli.sh path/to/kervan}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/coordinator_lib.sh"

for i in $(seq 1 400); do printf 'document %d\n<|endoftext|>\n' "$i"; done >"$work/in.txt"
"$kervan" prepare --tokenizer bytes --threads 1 --shard-tokens 1000 --val-fraction 0.1 --out "$work/corpus" \
  "$work/in.txt" 2>/dev/null || fail "prepare"

# Status of a running coordinator; a stop request is journaled, and survives a SIGKILL.
start_coordinator one --corpus "$work/corpus" --journal "$work/one.journal" --listen 127.0.0.1:0
"$kervan" status --coordinator "$coord_addr" >"$work/table" 2>&1 || fail "status: $(cat "$work/table")"
grep -q "^job default: coordinator up" "$work/table" || fail "status table: $(head -3 "$work/table")"
[[ $(status_field step) == -1 ]] || fail "status --json: step $(status_field step), expected -1 (no training yet)"
"$kervan" status --coordinator "$coord_addr" --stop "maintenance" >/dev/null 2>&1 || fail "status --stop"
kill -KILL "$coord_pid"
wait "$coord_pid" 2>/dev/null
start_coordinator one --corpus "$work/corpus" --journal "$work/one.journal" --listen 127.0.0.1:0
"$kervan" status --coordinator "$coord_addr" --json | grep -q '"stop_requested":true,"stop_reason":"maintenance"' ||
  fail "the stop request did not survive the restart: $("$kervan" status --coordinator "$coord_addr" --json)"
grep -q "replayed 1 journal records" "$work/one.log" || fail "no replay logged: $(tail -2 "$work/one.log")"

# Refusals: token, job; and a port in use.
expect_error "wrong token" "refused Status: UNAUTHENTICATED: wrong token" \
  env KERVAN_TOKEN=nope "$kervan" status --coordinator "$coord_addr"
expect_error "other job" "refused Status: PERMISSION_DENIED: the request is for job 'other'" \
  "$kervan" status --coordinator "$coord_addr" --job other
expect_error "port in use" "cannot listen on $coord_addr" \
  "$kervan" coordinator --corpus "$work/corpus" --journal "$work/two.journal" --listen "$coord_addr"
[[ ! -e "$work/two.journal" ]] || fail "the start that could not listen left its new journal behind"
expect_error "journal in use" "one.journal: the journal is in use by another coordinator" \
  "$kervan" coordinator --corpus "$work/corpus" --journal "$work/one.journal" --listen 127.0.0.1:0
stop_coordinator

# TLS: a client that trusts the coordinator's CA is served; a plaintext client gets no answer.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" -days 2 -subj /CN=kervan-ca 2>/dev/null &&
  openssl req -newkey rsa:2048 -nodes -keyout "$work/server.key" -out "$work/server.csr" -subj /CN=127.0.0.1 2>/dev/null &&
  openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
    -out "$work/server.pem" -extfile <(printf 'subjectAltName=IP:127.0.0.1\n') 2>/dev/null || fail "making test certificates"
start_coordinator tls --corpus "$work/corpus" --journal "$work/tls.journal" --listen 127.0.0.1:0 \
  --tls-cert "$work/server.pem" --tls-key "$work/server.key"
KERVAN_TLS_CA="$work/ca.pem" "$kervan" status --coordinator "$coord_addr" >/dev/null 2>&1 || fail "status over TLS"
expect_exit 4 "plaintext against TLS" "Status on the coordinator at $coord_addr: no answer for 1 s" \
  "$kervan" status --coordinator "$coord_addr" --timeout-s 1
stop_coordinator

# Bad inputs to the coordinator.
expect_error "another job's journal" "one.journal: the journal belongs to job 'default'" \
  "$kervan" coordinator --corpus "$work/corpus" --journal "$work/one.journal" --listen 127.0.0.1:0 --job other
expect_error "no token" "needs the job's shared secret" \
  env -u KERVAN_TOKEN "$kervan" coordinator --corpus "$work/corpus" --journal "$work/x.journal"
printf 'secret\n' >"$work/token"
chmod 644 "$work/token"
expect_error "readable token file" "token: the token file is accessible by others (mode 0644)" \
  env -u KERVAN_TOKEN "$kervan" coordinator --corpus "$work/corpus" --journal "$work/x.journal" --token-file "$work/token"
expect_error "listen without port" "--listen localhost: expected HOST:PORT" \
  "$kervan" coordinator --corpus "$work/corpus" --journal "$work/x.journal" --listen localhost
expect_error "missing corpus" "$work/nothing: no such corpus folder" \
  "$kervan" coordinator --corpus "$work/nothing" --journal "$work/x.journal"
cp -r "$work/corpus" "$work/bad"
printf 'X' | dd of="$work/bad/train-00000-00000.kvs" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_error "corrupt shard" "bad/train-00000-00000.kvs: checksum mismatch" \
  "$kervan" coordinator --corpus "$work/bad" --journal "$work/x.journal"
printf 'not a journal' >"$work/garbage.journal"
expect_error "not a journal" "garbage.journal: not a kervan coordinator journal" \
  "$kervan" coordinator --corpus "$work/corpus" --journal "$work/garbage.journal"
[[ "$(cat "$work/garbage.journal")" == "not a journal" ]] || fail "a foreign file given as --journal was changed"
expect_exit 4 "unreachable" "Status on the coordinator at 127.0.0.1:1: no answer for 1 s" \
  "$kervan" status --coordinator 127.0.0.1:1 --timeout-s 1

finish coordinator_cli "all checks passed"
