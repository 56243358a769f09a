"""The shipped workflow configs as rules/common.smk sees them: read, validated against config/schema.yaml
(smart.workflow.schema.validate_config) and filled with its defaults (smart.workflow.schema.fill_defaults), without
Snakemake's parser."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from smart.workflow.schema import fill_defaults, validate_config

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "config" / "schema.yaml"
SHIPPED = sorted((REPO / "config").glob("*.yaml"))
SHIPPED = [p for p in SHIPPED if p.name != "schema.yaml"]


def filled(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` validated and default-filled, as common.smk does before any check."""
    config = copy.deepcopy(config)
    schema = yaml.safe_load(SCHEMA.read_text())
    validate_config(config, schema)
    fill_defaults(config, schema, schema.get("definitions", {}))
    return config


def shipped(name: str) -> dict[str, Any]:
    """config/<name> read, validated and filled."""
    return filled(yaml.safe_load((REPO / "config" / name).read_text()))
