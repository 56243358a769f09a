"""``smart linear-probe``: logistic regression on frozen encoder features for one fold (smart.downstream.linear_probe)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from smart.commands._downstream_options import add_downstream_arguments

    add_downstream_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from smart.downstream.linear_probe import linear_probe
    from smart.downstream.protocol import load_downstream_config

    cfg = load_downstream_config(args.config, args.set)
    record = linear_probe(args.encoder, args.cohort, args.splits, args.fold, args.out, cfg, fraction=args.fraction)
    name = record["reported"]
    print(f"probe fold {args.fold}: {record['feature']} features, C={record['C']} chosen on inner_val "
          f"({record['selected_on']['n']} samples), {'test' if name == 'test' else f'fold {args.fold}'} AUC "
          f"{record[name]['auc']} -> {Path(args.out) / 'metrics.json'}")
    return 0
