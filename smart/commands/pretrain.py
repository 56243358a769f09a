"""``smart pretrain``: self-supervised pretraining of SMART, a baseline or an ablation (docs/ARCHITECTURE.md "CLI").

Exit codes: 0 done; 2 bad input (unknown method/key, missing manifest files, ...); 3 too many consecutive non-finite
losses; 75 stopped by SIGTERM/SIGUSR1 after writing ``checkpoint_last.pt`` (rerun with ``--resume``).
Multi-GPU: ``torchrun --nproc_per_node G -m smart pretrain ...``; ``data.batch_size`` is per process.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from smart.config import preset_names
    from smart.ssl.methods import method_names

    parser.add_argument("--method", required=True, help="method or ablation: " + ", ".join(method_names()))
    parser.add_argument("--manifest", required=True, help="CT manifest CSV from `smart resample` (rows with status ok)")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, encoder.pt, metrics.jsonl, config.json)")
    parser.add_argument("--config", default=None, help="YAML file of config overrides (nested or dotted keys)")
    parser.add_argument("--preset", default=None, choices=preset_names(), help="size preset applied before the method")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. --set loss.aitd=0 (repeatable; value parsed as YAML)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (schedules unchanged)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint_last.pt if present")


def main(args: argparse.Namespace) -> int:
    from smart.config import load_config
    from smart.train import distributed
    from smart.train.pretrain import NonFiniteLossError, TrainingInterrupted, pretrain

    try:
        cfg = load_config(args.method, args.preset, args.config, args.overrides)
        summary = pretrain(cfg, args.manifest, args.out, max_steps=args.max_steps, resume=args.resume)
    except ValueError as exc:
        print(f"smart pretrain: error: {exc}", file=sys.stderr)
        return 2
    except (TrainingInterrupted, NonFiniteLossError) as exc:
        print(f"smart pretrain: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        distributed.cleanup()
    print(f"smart pretrain: finished {summary['step']} steps ({summary['nonfinite']} non-finite skipped) in {args.out}")
    return 0
