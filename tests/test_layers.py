"""The import structure of ``smart/`` follows smart/layers.py: every import (module- and function-level, read from the
AST, so nothing is executed) points to the same unit or a lower layer, units form no cycle, no module defines a
module-level ``__getattr__``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from graph_helpers import import_cycles

from smart.layers import LAYERS, layer_of

PACKAGE = Path(__file__).resolve().parents[1] / "smart"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "smart" and len(parts) > 1 else None


def _imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import statement anywhere in ``tree`` (relative ones resolved)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            # `from smart import ssl` imports the unit ssl, not the package root
            if target == "smart":
                found += [(f"smart.{alias.name}", node.lineno) for alias in node.names]
    return found


def import_edges() -> list[tuple[str, str, str, int]]:
    """``(from unit, to unit, file, line)`` for every import of another ``smart`` unit."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        here = _unit(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for target, line in _imported(tree, module, path.name == "__init__.py"):
            there = _unit(target)
            if here and there and there != here:
                edges.append((here, there, str(path.relative_to(PACKAGE.parent)), line))
    return edges


def _cycles(edges: list[tuple[str, str, str, int]]) -> list[list[str]]:
    """The import cycles between units (each edge a unit -> unit import)."""
    graph: dict[str, set[str]] = {}
    for a, b, _, _ in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    return import_cycles(graph)


def test_every_unit_is_declared():
    units = {_unit(_module_name(p)) for p in PACKAGE.rglob("*.py")} - {None}
    declared = set().union(*LAYERS)
    assert units - declared == set(), "units missing from smart/layers.py"
    assert declared - units == set(), "smart/layers.py declares units that do not exist"


def test_imports_point_down_only():
    wrong = [f"{file}:{line}: {a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
             for a, b, file, line in import_edges() if layer_of(b) >= layer_of(a)]
    assert wrong == [], "imports against the layer order of smart/layers.py:\n" + "\n".join(wrong)


def test_no_cycle_between_units():
    assert _cycles(import_edges()) == []


def test_no_module_level_getattr():
    offenders = [str(p.relative_to(PACKAGE.parent)) for p in sorted(PACKAGE.rglob("*.py"))
                 if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__"
                        for n in ast.parse(p.read_text(encoding="utf-8")).body)]
    assert offenders == []


# The checker itself must catch what it is for: a function-level upward import, a cycle, a relative import.
def test_checker_sees_function_level_and_relative_imports():
    tree = ast.parse("def f():\n    from smart.train.optim import x\nfrom ..config import y\n")
    assert sorted(_imported(tree, "smart.ssl.self_distillation", False)) == [("smart.config", 3), ("smart.train.optim", 2)]


def test_checker_finds_a_cycle():
    edges = [("ssl", "train", "a", 1), ("train", "ssl", "b", 1), ("train", "data", "c", 1)]
    assert _cycles(edges) == [["ssl", "train"]]


def test_unknown_unit_is_an_error():
    with pytest.raises(KeyError, match="not declared"):
        layer_of("nowhere")
