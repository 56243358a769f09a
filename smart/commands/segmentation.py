"""``smart segmentation``: fine-tune MONAI SwinUNETR from a pretrained encoder (or from scratch) on labelled volumes
and report Dice per structure (smart.downstream.segmentation)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from smart.downstream.segmentation import DEFAULTS

    parser.add_argument("--weights", required=True,
                        help="MONAI self-supervised Swin weights (`smart export --format monai-ssl`), or 'none' "
                             "(scratch)")
    parser.add_argument("--csv", required=True, help="labelled volumes: case_id, image, label, split (train/val/test)")
    parser.add_argument("--out", required=True, help="run folder (metrics.json, model.pt, checkpoint_last.pt, tb/)")
    parser.add_argument("--config", default=None, help="YAML with segmentation keys (top level or under 'segmentation:')")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a key ({', '.join(sorted(DEFAULTS))}; model.x=v nests)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (checkpoint kept)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint_last.pt if present")


def main(args: argparse.Namespace) -> int:
    from smart.preemption import TrainingInterrupted
    from smart.downstream.segmentation import load_segmentation_config, train_segmentation

    try:
        cfg = load_segmentation_config(args.config, args.set)
        record = train_segmentation(cfg, args.csv, args.weights, args.out, resume=args.resume,
                                    max_steps=args.max_steps)
    except TrainingInterrupted as exc:
        print(f"smart segmentation: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:
        print(f"smart segmentation: error: {exc}", file=sys.stderr)
        return 2
    if "test" not in record:
        print(f"smart segmentation: stopped at step {record['step']} (rerun with --resume)")
        return 0
    dice = ", ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in record["test"]["dice"].items())
    print(f"smart segmentation: test Dice ({record['test']['n']} cases): {dice} -> {args.out}/metrics.json")
    return 0
