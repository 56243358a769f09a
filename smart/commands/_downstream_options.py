"""Arguments shared by ``smart finetune`` and ``smart linear-probe`` (docs/ARCHITECTURE.md "CLI contract")."""

from __future__ import annotations

import argparse

from smart.downstream.protocol import DEFAULTS, FRACTIONS_HINT


def add_downstream_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoder", required=True, help="encoder.pt from pretraining/export, or 'none' (random init)")
    parser.add_argument("--cohort", required=True, help="cohort CSV: sample_id, patient_id, image, label")
    parser.add_argument("--splits", required=True, help="splits.json from 'smart splits'")
    parser.add_argument("--fold", type=int, required=True,
                        help="held-out fold k (train on the other folds; every choice is made on an inner split of them)")
    parser.add_argument("--out", required=True, help="output folder (metrics.json)")
    parser.add_argument("--fraction", type=float, default=1.0, help=f"training fraction, {FRACTIONS_HINT}")
    parser.add_argument("--config", default=None, help="YAML with downstream keys (top level or under 'finetune:')")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a downstream key ({', '.join(sorted(DEFAULTS))})")
