#!/usr/bin/env bash
# Times the README's main command as a new user would run it: a fresh clone of this repository,
# a fresh virtual environment, `pip install -e . && python examples/train_imagenet.py`.
# The wall time includes the install, generating and packing the default data, compiling the
# numba kernels (empty cache) and training; the run prints its validation accuracy at the end.
#
#   bash benchmarks/time_main_command.sh [WORKDIR]      (default WORKDIR: a new temporary folder)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
git clone -q "$repo" "$work/clone"
cd "$work/clone"
python3 -m venv .venv
source .venv/bin/activate
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; commit $(git rev-parse --short HEAD)"
start=$(date +%s)
# the exact command; progress bars (stderr) go to a file
pip install --no-cache-dir -q -e . && python examples/train_imagenet.py 2> "$work/progress.log"
echo "README main command: $(( $(date +%s) - start )) s wall in total (install included)"
