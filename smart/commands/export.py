"""``smart export``: write ``encoder.pt`` (backbone + SA + mask token, docs/ARCHITECTURE.md "Encoder file") from a
training checkpoint's *student* encoder."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint_last.pt / checkpoint_final.pt of `smart pretrain`")
    parser.add_argument("--out", required=True, help="encoder file to write (e.g. encoder.pt)")


def main(args: argparse.Namespace) -> int:
    from smart.train.checkpoint import export_from_checkpoint

    try:
        export_from_checkpoint(args.checkpoint, args.out)
    except ValueError as exc:
        print(f"smart export: error: {exc}", file=sys.stderr)
        return 2
    print(f"smart export: wrote {args.out}")
    return 0
