#!/usr/bin/env bash
# Installs the Debian packages underspec builds against (Debian 12). Packages already
# installed are skipped, so the script is quick and needs no network when nothing is missing.
# The CUDA toolkit is assumed installed; nvcc is looked up in /usr/local/cuda/bin as well.
set -euo pipefail

packages=(build-essential git cmake ninja-build libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
          libgtest-dev libgmock-dev googletest librandom123-dev libbenchmark-dev
          python3-numpy python3-scipy python3-pandas python3-matplotlib python3-pytest python3-pil chromium
          clang-14 libclang-rt-14-dev strace)
# git: the build records its commit (outputs, checkpoints, the gpu-check's prebuilt check).
# Python tests (ctest labels python, browser): the SciPy check of summary.json needs
# python3-scipy/numpy/pandas; the report (python/underspec) python3-pandas and
# python3-matplotlib; the tests python3-pytest and python3-pil; the browser test chromium;
# the config fuzzer (scripts/sanitize.sh) clang-14 and libclang-rt-14-dev; the test that
# counts the threads a run starts (SweepCli.ThreadsLimitsTheStatisticsToo) strace.

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  echo "install-deps: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present" >&2
fi

# CMake finds nvcc on PATH; the toolkit's default location is often not on it. This only
# lasts for the caller's shell when the script is sourced (`. scripts/install-deps.sh`).
if ! command -v nvcc >/dev/null 2>&1; then
  if [[ -x /usr/local/cuda/bin/nvcc ]]; then
    export PATH="/usr/local/cuda/bin:$PATH"
    echo "install-deps: nvcc found in /usr/local/cuda/bin (add it to PATH)" >&2
  else
    echo "install-deps: warning: nvcc not found; install the CUDA toolkit" >&2
  fi
fi
