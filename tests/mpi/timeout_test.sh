#!/usr/bin/env bash
# A stalled rank and a dead rank each end the job quickly with an error, never a hang.
set -uo pipefail
probe=${1:?usage: timeout_test.sh path/to/timeout_probe}
mpirun_cmd=(mpirun -np 3 --oversubscribe)
fails=0

start=$(date +%s)
out=$(timeout 60 "${mpirun_cmd[@]}" "$probe" stall 2>&1)
rc=$?
took=$(($(date +%s) - start))
if [[ $rc -eq 0 || $rc -eq 124 ]]; then echo "FAIL stall: exit code $rc"; fails=1; fi
grep -q "all_reduce of 0.004 MB (1000 x f32) did not complete within 2" <<<"$out" || { echo "FAIL stall: no timeout message naming the operation"; fails=1; }
grep -q "ranks that did not arrive: 1$" <<<"$out" || { echo "FAIL stall: did not name rank 1"; fails=1; }
((took < 40)) || { echo "FAIL stall: took ${took}s"; fails=1; }

start=$(date +%s)
out=$(timeout 60 "${mpirun_cmd[@]}" "$probe" die 2>&1)
rc=$?
took=$(($(date +%s) - start))
if [[ $rc -eq 0 || $rc -eq 124 ]]; then echo "FAIL die: exit code $rc"; fails=1; fi
((took < 40)) || { echo "FAIL die: took ${took}s"; fails=1; }

if ((fails)); then
  echo "--- last output:"
  echo "$out" | tail -20
  exit 1
fi
echo "timeout_test: stalled rank -> timeout error naming rank 1; dead rank -> job ended (${took}s)"
