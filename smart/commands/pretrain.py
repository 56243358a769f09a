"""``smart pretrain``: self-supervised pretraining of SMART, a baseline or an ablation (docs/ARCHITECTURE.md "CLI").

Exit codes: 0 done; 2 bad input (unknown method/key, missing manifest files, ...); 3 too many consecutive non-finite
losses; 4 a head collapsed under ``train.stop_on_collapse`` (smart.ssl.health); 75 stopped by SIGTERM/SIGUSR1 after writing ``checkpoint_last.pt`` (rerun with ``--resume``).
Multi-GPU: ``torchrun --nproc_per_node G -m smart pretrain ...``; ``data.batch_size`` is per process.

Without ``--preset`` the run is at paper scale (the paper's network on 128³ crops, ``train.steps`` 10,000, 4 data
workers): the first lines of the log say so, with the crop, steps, batch and data workers against the CPU cores, so a
laptop run that will take days is visible at once. Progress: ``smart.progress`` (a bar on a terminal, a line every
``$SMART_PROGRESS_SECONDS`` s in a log).
"""

from __future__ import annotations

import argparse
import os
import sys


def scale_note() -> str:
    """What running without ``--preset`` means, from ``smart.config.DEFAULTS`` (so it cannot drift from them)."""
    from smart.config import DEFAULTS, PRESETS

    model, data, train = DEFAULTS["model"], DEFAULTS["data"], DEFAULTS["train"]
    tiny = PRESETS["tiny"]
    return (f"Without --preset the run is at PAPER SCALE: the paper's {model['arch'].capitalize()} network (embed_dim "
            f"{model['embed_dim']}, depths {'-'.join(map(str, model['depths']))}) on "
            f"{'x'.join(map(str, data['crop_size']))} crops, {train['steps']} steps, {data['num_workers']} data workers "
            f"-- GPU-node work. Use --preset tiny for a CPU smoke run ({'x'.join(map(str, tiny['data']['crop_size']))} "
            f"crops, a narrow network, {tiny['train']['steps']} steps), or --preset paper for the paper's schedule.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from smart.config import preset_names
    from smart.ssl.methods import method_names

    parser.description = f"{parser.description or 'Self-supervised pretraining'}. {scale_note()}"

    parser.add_argument("--method", required=True, help="method or ablation: " + ", ".join(method_names()))
    parser.add_argument("--manifest", required=True, help="CT manifest CSV from `smart resample` (rows with status ok)")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, encoder.pt, metrics.jsonl, config.json)")
    parser.add_argument("--config", default=None, help="YAML file of config overrides (nested or dotted keys)")
    parser.add_argument("--preset", default=None, choices=preset_names(),
                        help="size preset applied before the method (default: none = paper scale, see above)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. --set loss.aitd=0 or --set loss.centering=sinkhorn_knopp "
                             "(repeatable; value parsed as YAML; every key: docs/ARCHITECTURE.md 'Pretraining config keys')")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (schedules unchanged)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint_last.pt if present")


def run_header(cfg: dict, method: str, preset: str | None, cores: int | None = None) -> list[str]:
    """The first log lines: preset, crop, steps, batch, data workers vs CPU cores (and a warning without a preset)."""
    if cores is None:  # the cores this process may use (a SLURM allocation), not the node's
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    data, train = cfg["data"], cfg["train"]
    crop = "x".join(str(c) for c in data["crop_size"])
    workers = int(data["num_workers"])
    lines = [f"method {method}, preset {preset or 'none (paper scale)'}: crop {crop} voxels, {train['steps']} steps, "
             f"batch {data['batch_size']} per process, model embed_dim {cfg['model']['embed_dim']} depths "
             f"{list(cfg['model']['depths'])}, {workers} data workers on {cores} CPU cores"]
    if preset is None:
        lines.append("warning: " + scale_note())
    if workers > max(cores - 1, 0):
        lines.append(f"warning: data.num_workers={workers} leaves no core for the training process on this machine "
                     f"({cores} cores); lower it with --set data.num_workers=N")
    return lines


def main(args: argparse.Namespace) -> int:
    from smart.config import load_config
    from smart.train import distributed
    from smart.train.pretrain import CollapseError, NonFiniteLossError, TrainingInterrupted, pretrain

    try:
        cfg = load_config(args.method, args.preset, args.config, args.overrides)
        if os.environ.get("RANK", "0") in ("", "0"):  # torchrun: rank 0 prints the header once
            for line in run_header(cfg, args.method, args.preset):
                print(f"smart pretrain: {line}", file=sys.stderr, flush=True)
        summary = pretrain(cfg, args.manifest, args.out, max_steps=args.max_steps, resume=args.resume,
                           run_info={"preset": args.preset, "config_yaml": args.config, "overrides": args.overrides})
    except ValueError as exc:
        print(f"smart pretrain: error: {exc}", file=sys.stderr)
        return 2
    except (TrainingInterrupted, NonFiniteLossError, CollapseError) as exc:
        print(f"smart pretrain: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        distributed.cleanup()
    print(f"smart pretrain: finished {summary['step']} steps ({summary['nonfinite']} non-finite skipped) in {args.out}")
    return 0
