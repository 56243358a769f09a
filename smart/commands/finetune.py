"""``smart finetune``: cross-validated fine-tuning of one encoder on one fold (smart.downstream.finetune)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from smart.commands._downstream_options import add_downstream_arguments
    from smart.models.classifier import HEADS

    add_downstream_arguments(parser)
    parser.add_argument("--head", choices=HEADS, default="cls",
                        help="classification feature: SA [CLS] (default), stage-4 average pool, or a re-initialised SA")
    parser.add_argument("--resume", action="store_true",
                        help="continue OUT/checkpoint_last.pt if its config and inputs match (else start fresh); "
                             "exit code 75 = stopped by SIGTERM/SIGUSR1 after checkpointing")


def main(args: argparse.Namespace) -> int:
    from smart.downstream.finetune import finetune
    from smart.downstream.protocol import load_downstream_config
    from smart.preemption import TrainingInterrupted

    cfg = load_downstream_config(args.config, args.set)
    try:
        record = finetune(args.encoder, args.cohort, args.splits, args.fold, args.out, cfg, head=args.head,
                          fraction=args.fraction, progress=True, resume=args.resume)
    except TrainingInterrupted as exc:
        print(f"smart finetune: {exc}", file=sys.stderr)
        return exc.exit_code
    test = record["test"]
    print(f"fold {args.fold} fraction {args.fraction}: test AUC {test['auc']} AP50 {test['ap50']:.3f} "
          f"AR50 {test['ar50']:.3f} (n={test['n']}) -> {Path(args.out) / 'metrics.json'}")
    return 0
