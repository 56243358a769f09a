"""Filling config/schema.yaml's defaults into the workflow config, and typing the values of Snakemake's
``--config`` the way a config file would be read."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import yaml


def resolve_ref(schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> dict[str, Any]:
    """A local ``$ref`` ("#/definitions/<name>") resolved; keys beside the ``$ref`` (a group's own ``default``)
    win."""
    if "$ref" not in schema:
        return dict(schema)
    siblings = {k: v for k, v in schema.items() if k != "$ref"}
    return {**definitions[os.path.basename(schema["$ref"])], **siblings}


def fill_defaults(node: Any, schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> None:
    """Insert schema defaults at every depth, in place: snakemake's ``validate()`` fills a missing section with its
    default ``{}`` but not that section's own keys. A mapping default (a resource group's) also fills the keys a
    partial block leaves out, so ``resources: {embed: {gpu: 1}}`` keeps embed's documented runtime and memory."""
    schema = resolve_ref(schema, definitions)
    if not isinstance(node, dict) or schema.get("type") != "object":
        return
    for key, sub in schema.get("properties", {}).items():
        resolved = resolve_ref(sub, definitions)
        default = resolved.get("default")
        if key not in node and "default" in resolved:
            node[key] = copy.deepcopy(default)
        elif isinstance(node.get(key), dict) and isinstance(default, dict):
            for k, v in default.items():
                node[key].setdefault(k, copy.deepcopy(v))
        if key in node:
            fill_defaults(node[key], resolved, definitions)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(node) - set(schema.get("properties", {})):
            fill_defaults(node[key], extra, definitions)


def yaml_typed(value: Any) -> Any:
    """A ``--config`` value with its nested scalars read as YAML: Snakemake parses a nested ``--config`` value with
    YAML's BaseLoader, which leaves every scalar a string (``pretrain='{max_steps: 50}'`` gives max_steps '50'), so
    each string below the top level is read again with ``safe_load``, as a config file would be. An empty string
    and a string that reads as a mapping or list stay strings."""
    if isinstance(value, dict):
        return {k: yaml_typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [yaml_typed(v) for v in value]
    if isinstance(value, str) and value:
        try:
            typed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return value if isinstance(typed, (dict, list)) else typed
    return value


def typed_command_line(command_line: Mapping[str, Any]) -> dict[str, Any]:
    """The ``--config`` entries with YAML-typed nested values (top-level values are already typed by
    Snakemake); re-applied as the last layer."""
    return {k: (yaml_typed(v) if isinstance(v, (dict, list)) else v) for k, v in dict(command_line).items()}
