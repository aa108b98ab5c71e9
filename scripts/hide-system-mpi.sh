#!/usr/bin/env bash
# Runs "$@" with Debian's Open MPI and PMIx hidden, as on the GPU machine, which has neither: so
# that scripts/gpu-bundle.sh can check here that the bundled mpirun works on its own.
#   usage: unshare -m --propagation private scripts/hide-system-mpi.sh COMMAND...
# (root; the mounts are made in the private mount namespace only: empty folders bound over Open
# MPI's and PMIx's folders, /dev/null over their programs and libraries.)
set -e
empty=$(mktemp -d)
for d in /usr/lib/x86_64-linux-gnu/openmpi /usr/lib/x86_64-linux-gnu/pmix2 /usr/share/openmpi /etc/openmpi /usr/share/pmix; do
  [[ -d $d ]] && mount --bind "$empty" "$d"
done
for f in /usr/bin/orterun /usr/bin/orted /usr/bin/ompi_info $(ls /usr/lib/x86_64-linux-gnu/libmpi.so.40.* /usr/lib/x86_64-linux-gnu/libopen-rte.so.40.* /usr/lib/x86_64-linux-gnu/libopen-pal.so.40.* 2>/dev/null); do
  [[ -e $f ]] && mount --bind /dev/null "$f"
done
exec "$@"
