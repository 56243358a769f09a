#!/usr/bin/env bash
# Installs SMART and everything its tests and demo need into the current Python (a venv or conda env if one is active).
# torch goes first and pinned: a bare `torch` requirement would pull several GB of CUDA wheels on a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m pip install -q --upgrade pip
$PY -m pip install -q "torch==2.13.0"
$PY -m pip install -q -e ".[test]"
# A writable numba cache: umap-learn compiles on first import (~30 s) and fails on read-only site-packages.
mkdir -p "${NUMBA_CACHE_DIR:-$HOME/.cache/numba}"
$PY -c "import smart, torch, monai, SimpleITK; print('smart', smart.__version__, '| torch', torch.__version__, '| monai', monai.__version__)"
