"""The ``--set key=value`` words every step of the workflow receives, and the shape check of the ``set`` blocks
that can run before the schema (pretraining keys are ``section.key``; smart.config, docs/ARCHITECTURE.md
"Pretraining config keys")."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from smart.overlay import set_items


def set_args(*override_dicts: Mapping[str, Any] | None) -> str:
    """The merged dicts as one shell-quoted ``--set k=v ...`` string."""
    return " ".join(f"--set {shlex.quote(item)}" for item in set_items(*override_dicts))


def optional_arg(flag: str, value: Any) -> str:
    """``flag value`` shell-quoted, or nothing for ``None`` / ``""``."""
    return "" if value in (None, "") else f"{flag} {shlex.quote(str(value))}"


def _section(config: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    node: Any = config
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, dict) else {}


def pretraining_sets(config: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(where, overrides)`` of every pretraining ``set``: pretrain.set and each variant's set (read defensively:
    the config may not have passed the schema yet)."""
    out = [("pretrain.set", _section(config, "pretrain", "set"))]
    return out + [(f"variants.{v}.set", _section(config, "variants", v, "set")) for v in _section(config, "variants")]


def downstream_sets(config: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(where, overrides)`` of every fine-tuning ``set``: finetune.set and each task's set."""
    out = [("finetune.set", _section(config, "finetune", "set"))]
    return out + [(f"tasks.{t}.set", _section(config, "tasks", t, "set")) for t in _section(config, "tasks")]


def check_pretraining_key_shape(config: Mapping[str, Any]) -> None:
    """Before the schema: a flat key in a pretraining ``set`` (``epochs``) is a fine-tuning key given to the wrong
    step; say where it belongs (the schema's key pattern would only say "does not match"). Whether a dotted key
    exists is checked by :func:`smart.workflow.resolve.check_override_owners` after the schema."""
    for where, overrides in pretraining_sets(config):
        for key in overrides:
            if "." not in str(key):
                raise ValueError(f"config {where}: {key!r} is not a pretraining key (smart.config, "
                                 f"docs/ARCHITECTURE.md 'Pretraining config keys'); fine-tuning keys go under "
                                 f"finetune.set")
