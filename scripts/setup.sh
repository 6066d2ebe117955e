#!/usr/bin/env bash
# Create .venv in the repository and install the toolkit into it.
#   bash scripts/setup.sh          the toolkit
#   bash scripts/setup.sh --test   the toolkit and the test tools
# PyTorch is installed first, pinned to the CPU wheel (torch==2.13.0), so that nothing later
# pulls the multi-GB CUDA build. On a GPU machine, install the torch build you want into
# .venv before running this script: a torch that satisfies the requirement is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
extras=""
if [ "${1:-}" = "--test" ]; then extras="[test]"; fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# (this workplace's pip config names local mirrors that may be absent: drop those warnings only)
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu picks PyTorch's CPU wheels on machines
  # whose pip would otherwise fetch the CUDA build
  pip install "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi
pip install -e ".${extras}"
.venv/bin/python -c "import torch, symusic, h5py; from cli.main import main" \
  || { echo "setup failed: the toolkit does not import (see the pip output above)" >&2; exit 1; }
echo "installed: $(.venv/bin/genre --version) with torch $(.venv/bin/python -c 'import torch; print(torch.__version__)') in .venv"
