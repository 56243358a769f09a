"""smart.workflow imports without torch: the workflow validates its config before anything imports torch
(docs/ARCHITECTURE.md), so every module of the package must be importable on a bare interpreter."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys

import smart.workflow
from plan_configs import REPO

MODULES = sorted(f"smart.workflow.{m.name}" for m in pkgutil.iter_modules(smart.workflow.__path__))


def test_every_workflow_module_imports_without_torch():
    assert {"smart.workflow.checks", "smart.workflow.resolve", "smart.workflow.variants"} <= set(MODULES)
    code = ("import importlib, sys\n"
            f"for name in {MODULES!r}: importlib.import_module(name)\n"
            "heavy = sorted(m for m in ('torch', 'monai', 'numpy', 'pandas') if m in sys.modules)\n"
            "print('heavy:', heavy)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "heavy: []"


def test_the_workflow_imports_no_layer_above_it():
    from smart.layers import layer_of

    assert layer_of("workflow") > max(layer_of("config"), layer_of("downstream"), layer_of("models"))
