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
    name = record["reported"]
    result, inner = record[name], record["selected_on"]
    print(f"fold {args.fold} fraction {args.fraction}: epoch {record['selected_epoch']} chosen on inner_val "
          f"({inner['n']} samples, {inner['patients']} patients); {'test' if name == 'test' else f'fold {args.fold}'} "
          f"AUC {result['auc']} AP50 {result['ap50']:.3f} AR50 {result['ar50']:.3f} (n={result['n']}) "
          f"-> {Path(args.out) / 'metrics.json'}")
    return 0
