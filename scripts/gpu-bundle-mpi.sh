#!/usr/bin/env bash
# Open MPI's launcher for the GPU machine, which has none of Debian's packages: mpirun (orterun),
# orted, Open MPI's MCA plugins and help texts, PMIx's plugins and help texts, laid out as Debian
# installs them but under one folder, so that OPAL_PREFIX (Open MPI) and PMIX_INSTALL_PREFIX (PMIx)
# relocate them. scripts/gpu-bundle.sh calls it; gpu-check.sh sets the variables (see there).
#   usage: scripts/gpu-bundle-mpi.sh STAGE   (adds STAGE/ompi, STAGE/pmix and libraries to STAGE/lib)
# Plugins whose libraries are not in the bundle (InfiniBand, UCX, libfabric, ...) are left out:
# one node over shared memory (vader) and TCP needs none of them.
set -euo pipefail
stage=$1
ompi_lib=$(ompi_info --path libdir --parsable 2>/dev/null | sed -n 's/^path:libdir://p')
ompi_pkglib=$(ompi_info --path pkglibdir --parsable 2>/dev/null | sed -n 's/^path:pkglibdir://p')
ompi_data=$(ompi_info --path pkgdatadir --parsable 2>/dev/null | sed -n 's/^path:pkgdatadir://p')
ompi_prefix=$(ompi_info --path prefix --parsable 2>/dev/null | sed -n 's/^path:prefix://p')
if [[ -z $ompi_pkglib || ! -d $ompi_pkglib ]]; then
  echo "gpu-bundle-mpi: no Open MPI here (ompi_info); the bundle goes without mpirun" >&2
  exit 1
fi
pmix_lib=$(dirname "$(readlink -f "$(ldd "$ompi_pkglib/mca_pmix_ext3x.so" | awk '/libpmix/ { print $3 }')")")
pmix_prefix=$(dirname "$pmix_lib")

# The same paths below the new prefixes as below the old ones: Open MPI derives libdir, pkglibdir
# and pkgdatadir from OPAL_PREFIX, PMIx its plugin and help folders from PMIX_INSTALL_PREFIX.
rel() { echo "${1#"$2"}"; }
o=$stage/ompi p=$stage/pmix
mkdir -p "$o/bin" "$o$(rel "$ompi_pkglib" "$ompi_prefix")" "$o$(rel "$ompi_data" "$ompi_prefix")" "$p/lib/pmix" "$p/share"
cp -L "$(command -v orterun)" "$o/bin/mpirun"
cp -L "$(command -v orted)" "$o/bin/orted"
cp -r "$ompi_data/." "$o$(rel "$ompi_data" "$ompi_prefix")/"
[[ -d $pmix_prefix/share/pmix ]] && cp -r "$pmix_prefix/share/pmix" "$p/share/"
[[ -f $pmix_prefix/share/pmix-mca-params.conf ]] && cp "$pmix_prefix/share/pmix-mca-params.conf" "$p/share/"
cp -L "$pmix_lib"/pmix/*.so "$p/lib/pmix/" 2>/dev/null || true

# Libraries every kept binary and plugin needs, from this machine (the C library and loader stay
# the target's), into STAGE/lib; a plugin needing anything else is dropped.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libresolv)'
dropped=()
libs_of() { ldd "$1" | awk '/=>/ { print $1, $3 }'; }
for plugin in "$ompi_pkglib"/*.so; do
  ok=1
  while read -r name path; do
    [[ $name =~ $skip || $name =~ ^lib(open-rte|open-pal|mpi|mca_common_[a-z]+|hwloc|event|z|udev|pmix|evnt)[._-] ]] && continue
    [[ $path == not ]] && { ok=0; break; }
    case $name in libibverbs* | libucp* | libucs* | libuct* | libfabric* | libpsm* | librdmacm* | libcuda* | libnl-* | libslurm* | libxpmem* | libknem* | libpmi* | libjava* | libjvm*) ok=0; break ;; esac
  done < <(libs_of "$plugin")
  if (( ok )); then cp -L "$plugin" "$o$(rel "$ompi_pkglib" "$ompi_prefix")/"; else dropped+=("$(basename "$plugin")"); fi
done
for bin in "$o/bin/"* "$o$(rel "$ompi_pkglib" "$ompi_prefix")/"*.so "$p/lib/pmix/"*.so; do
  libs_of "$bin"
done | sort -u | while read -r name path; do
  [[ $name =~ $skip ]] && continue
  [[ $path == not ]] && { echo "gpu-bundle-mpi: $name not found" >&2; exit 1; }
  [[ -e $stage/lib/$name ]] || cp -L "$path" "$stage/lib/$name"
done
strip --strip-unneeded "$o/bin/"* "$o$(rel "$ompi_pkglib" "$ompi_prefix")/"*.so "$p/lib/pmix/"*.so 2>/dev/null || true
echo "gpu-bundle-mpi: Open MPI $(ompi_info --version 2>/dev/null | head -1 | awk '{print $NF}') runtime, $(ls "$o$(rel "$ompi_pkglib" "$ompi_prefix")" | wc -l) plugins (${#dropped[@]} left out: their libraries are not bundled)"
