#!/usr/bin/env bash
# Snakemake runs envs/<group>.post-deploy.sh (a link to this file) inside each conda env it creates from
# envs/<group>.yaml, after the pinned packages are in: it installs the `smart` package itself, editable, from the
# repository the workflow runs in. The Snakefile sets SMART_REPO to its own folder; by hand (conda env create -f
# envs/<group>.yaml, then this script inside the env) it defaults to the current directory.
# --no-deps: the env file already pins exactly what the group's rules import; pyproject.toml's full dependency list
# would pull torch (CUDA wheels) into the data env. --no-build-isolation: setuptools comes from the env (offline nodes).
set -euo pipefail
python -m pip install --no-deps --no-build-isolation -e "${SMART_REPO:-.}"
python -c "import smart, sys; print('smart', smart.__version__, 'from', smart.__file__, 'on Python', sys.version.split()[0])"
