"""``smart bench {pretrain|resample|loader|attention|ddp|memory|gpu}``: benchmarks whose numbers go into BENCHMARKS.md.

``memory`` re-measures the memory model (``smart/resources/memory_coefficients.json``, :mod:`smart.bench.memory`);
``gpu`` is the one-command GPU acceptance run (:mod:`smart.bench.gpu`; ``--device cpu --preset tiny`` is its smoke test).

Speed targets live here, never in timed unit tests. Every benchmark times its contenders in one process,
round-robin, and reports ratios against the anchor, because these machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from smart.config import preset_names

    parser.add_argument("what", choices=["pretrain", "resample", "loader", "attention", "ddp", "memory", "gpu"])
    parser.add_argument("--preset", default="tiny", choices=preset_names(),
                        help="model/crop size: tiny on CPU, paper (128^3, embed 48) on a GPU")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per contender (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps per contender")
    parser.add_argument("--methods", nargs="+", default=["smart", "smit"],
                        help="pretrain: methods to time; ddp: the first one")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="loader: DataLoader worker counts")
    parser.add_argument("--cases", type=int, nargs="+", default=[8],
                        help="loader: numbers of generated CTs (one run per count and worker count)")
    parser.add_argument("--volume", type=int, nargs=3, default=None,
                        help="loader: generated CT size (x y z); default 1.5x the preset's crop")
    parser.add_argument("--batches", type=int, default=20, help="loader: timed batches per run")
    parser.add_argument("--workdir", default=None, help="loader/resample: folder for the temporary files")
    parser.add_argument("--device", default=None, help="pretrain/attention: cpu or cuda (default: cuda if available)")
    parser.add_argument("--size", type=int, nargs=3, default=None, help="resample: volume size (x y z)")
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2], help="ddp: process counts (must include 1)")
    parser.add_argument("--steps", type=int, default=5, help="ddp: timed steps per run")
    parser.add_argument("--rounds", type=int, default=1, help="ddp: alternating rounds over the world sizes (median)")
    parser.add_argument("--smoke", action="store_true",
                        help="attention: one tiny window case and no encoder case (for tests)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (per rank for ddp); default: torch's (all cores), "
                             "ddp: cores // max(worlds)")
    parser.add_argument("--loss-steps", type=int, default=20,
                        help="gpu: steps of the bf16-vs-fp32 loss comparison (issue 18: 20)")
    parser.add_argument("--rules", nargs="+", default=None,
                        help="memory: measured steps to re-measure (default: all; pretrain finetune features attention "
                             "segmentation)")
    parser.add_argument("--out", default=None,
                        help="write the JSON result here (atomically) as well as to stdout; memory: the coefficients "
                             "file (default: the package's smart/resources/memory_coefficients.json); gpu: a folder "
                             "for gpu.json + gpu.md")


def command_line(args: argparse.Namespace) -> str:
    """The run as a full command with every option spelled out (built from the parsed arguments, not ``sys.argv``,
    so it is right when ``smart.cli.main`` is called programmatically, and defaults changed later do not alter it)."""
    parts = ["python -m smart bench", args.what]
    for key, value in vars(args).items():
        if key in ("command", "what", "out") or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        else:
            parts.append(" ".join([flag, *map(str, value if isinstance(value, list) else [value])]))
    return " ".join(parts)


def main(args: argparse.Namespace) -> int:
    import torch

    if args.repeats < 1 or args.warmup < 0:
        print("smart bench: error: --repeats must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    if args.threads is not None:
        if args.threads < 1:
            print(f"smart bench: error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    if args.what == "memory":
        from smart.bench.memory import run_memory_bench

        from smart.bench.memory import held_out_table

        result = run_memory_bench(args.rules, args.out, log=lambda line: print(line, file=sys.stderr, flush=True))
        print(held_out_table(result, args.rules))
        return 0
    if args.what == "gpu":
        from smart.bench.gpu import run_gpu_bench, write_gpu_bench

        if not args.out:
            print("smart bench gpu: error: --out DIR is required (gpu.json + gpu.md are written there)", file=sys.stderr)
            return 2
        result = run_gpu_bench(args.preset, args.device, args.repeats, args.warmup, loss_steps=args.loss_steps,
                               workdir=args.workdir)
        command = (f"python -m smart bench gpu --preset {args.preset} --device {result['device']} --repeats "
                   f"{args.repeats} --warmup {args.warmup} --loss-steps {args.loss_steps} --out {args.out}")
        paths = write_gpu_bench(args.out, result, command)
        print(f"wrote {paths[0]} and {paths[1]}")
        return 0
    if args.what == "pretrain":
        from smart.bench.pretrain import run_pretrain_bench

        result = run_pretrain_bench(args.preset, tuple(args.methods), args.repeats, args.warmup, args.device)
    elif args.what == "resample":
        from smart.bench.resample import run_resample_bench

        kwargs = {"repeats": args.repeats}
        if args.size:
            kwargs["size"] = tuple(args.size)
        result = run_resample_bench(**kwargs)
    elif args.what == "attention":
        from smart.bench.attention import run_attention_bench

        result = run_attention_bench(args.preset, args.repeats, args.warmup, smoke=args.smoke, encoder=not args.smoke,
                                     device=args.device)
    elif args.what == "ddp":
        from smart.bench.ddp import run_ddp_bench

        try:
            result = run_ddp_bench(args.methods[0], args.preset, tuple(args.worlds), args.steps, args.warmup,
                                   args.rounds, threads=args.threads)
        except ValueError as exc:
            print(f"smart bench ddp: error: {exc}", file=sys.stderr)
            return 2
    else:
        from smart.bench.loader import run_loader_bench

        volume = tuple(args.volume) if args.volume else None
        try:
            result = {"runs": [run_loader_bench(args.preset, num_workers=w, n_cases=n, batches=args.batches,
                                                volume=volume, workdir=args.workdir)
                               for n in args.cases for w in args.workers]}
        except ValueError as exc:
            print(f"smart bench loader: error: {exc}", file=sys.stderr)
            return 2
    result.setdefault("load_avg", list(os.getloadavg()))
    result.setdefault("threads", torch.get_num_threads())
    result["command"] = command_line(args)
    result["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        from smart.atomic import write_text

        write_text(args.out, text + "\n")
    print(text)
    return 0
