#!/usr/bin/env bash
# Unpack the header-only / test dependencies into .deps/ (ignored by git) so that they
# travel with the working tree to a bare GPU machine (CUDA toolkit, cmake, ninja; no
# Debian dev packages, no network). Run on a Debian 12 machine with apt access:
#   scripts/carry-deps.sh            # -> .deps/usr/{include,lib,share}
# then configure with -DUNDERSPEC_DEPS_ROOT=$PWD/.deps (bench/gpu-check.sh does).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps="$root/.deps"
packages=(libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev googletest
          librandom123-dev libbenchmark-dev libbenchmark1debian)
work="$(mktemp -d)"
chmod 755 "$work"  # apt-get download runs as _apt and must write here
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "${packages[@]}")
rm -rf "$deps"
mkdir -p "$deps"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$deps"; done
# Debian's GTest/benchmark CMake packages name their libraries by absolute multiarch
# paths under /usr; they resolve relative to the package prefix, so nothing to patch.
echo "carry-deps: $(ls "$work"/*.deb | wc -l) packages, $(du -sh "$deps" | cut -f1) in $deps"
