"""``smart bench gpu --out DIR``: the one-command GPU acceptance run (issue 18 item 6); writes ``DIR/gpu.json`` and
``DIR/gpu.md`` (a section for BENCHMARKS.md). Sized for <= 8 minutes on one H100 at ``--preset paper``.

1. **Step time**: SMART's pretraining step (:func:`smart.bench.pretrain.smart_step_fn`, bf16 autocast on CUDA) and
   MONAI's SwinUNETR-SSL step (:func:`smart.bench.pretrain.monai_step_fn`) on the same encoder config, crop and batch,
   timed round-robin in one process; model FLOPs per step (``torch.utils.flop_counter``), achieved TFLOP/s and MFU
   against the card's dense bf16 peak from the card table (:mod:`smart.resources.cards`).
2. **Peak memory vs the memory model**: ``torch.cuda.max_memory_allocated`` of a steady-state pretraining step and
   a fine-tuning step as config/paper.yaml runs it (micro-batch 4, activation checkpointing) (CPU: the live-tensor
   peak, :class:`smart.bench.memory.LiveBytes`) beside the prediction of
   :mod:`smart.resources.memory` — which holds paper-width coefficients, so the prediction is given at ``paper``
   only.
3. **bf16 vs fp32 loss agreement**: the same seeded SMART run, 20 steps each way; the largest relative difference.
4. **Loader**: samples/s of the pretraining loader with the preset's workers (:func:`smart.bench.loader.run_loader_bench`)
   against the samples/s the measured step consumes.
"""

from __future__ import annotations

import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from smart.bench.memory import GIB, LiveBytes, existing_bytes, finetune_step, pretrain_step, variant_key
from smart.bench.pretrain import ANCHOR, monai_step_fn, smart_step_fn, step_flops
from smart.bench.timing import interleaved_medians, summarize, synchronize

LOSS_STEPS = 20
NOT_MEASURED = "not measured"
NOT_APPLICABLE = "n/a"


def _card(device: torch.device) -> tuple[str | None, str]:
    from smart.resources.cards import card_from_device_name

    if device.type != "cuda":
        return None, platform.processor() or platform.machine()
    name = torch.cuda.get_device_name(device)
    memory = torch.cuda.get_device_properties(device).total_memory / GIB
    return card_from_device_name(name, memory), name


def step_peak_bytes(step, tracked, device: torch.device) -> int:
    """Peak bytes of one steady-state step (after one warm-up step that creates the optimiser state)."""
    step()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        step()
        synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    live = LiveBytes(existing_bytes(tracked))
    with live:
        step()
    return live.peak_bytes


def memory_rows(preset: str, device: torch.device, finetune_batch: int) -> list[dict[str, Any]]:
    from smart.config import load_config
    from smart.resources.memory import load_coefficients, predicted_peak_bytes

    cfg = load_config("smart", preset, None, [])
    edge, batch = int(cfg["data"]["crop_size"][0]), int(cfg["data"]["batch_size"])
    precision = "bf16" if device.type == "cuda" else "fp32"
    rows = []
    # fine-tuning as config/paper.yaml runs it: micro-batches with activation checkpointing
    for name, build, n, ckpt in (("pretrain", pretrain_step, batch, False),
                                 ("finetune", finetune_step, finetune_batch, True)):
        settings = {"precision": precision, "device": str(device), "preset": preset, "activation_checkpointing": ckpt}
        variant = variant_key(settings)
        step, tracked = build(edge, n, settings)
        measured = step_peak_bytes(step, tracked, device)
        predicted = None
        if preset == "paper":
            predicted = predicted_peak_bytes(name, variant, [edge] * 3, n, load_coefficients())
        rows.append({"step": name, "crop": edge, "batch": n, "precision": variant,
                     "measured_gib": measured / GIB, "predicted_gib": None if predicted is None else predicted / GIB,
                     "relative_error": None if predicted is None else (predicted - measured) / measured,
                     "measured_with": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "LiveBytes (CPU)"})
        del step, tracked
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def loss_agreement(preset: str, device: torch.device, steps: int = LOSS_STEPS) -> dict[str, Any]:
    """SMART at ``preset`` from the same seed, ``steps`` steps in fp32 and in bf16 autocast: the losses and their
    largest relative difference."""
    losses = {}
    for precision in ("fp32", "bf16"):
        step, _ = smart_step_fn("smart", preset, device, precision=precision)
        losses[precision] = [float(step()) for _ in range(steps)]
        del step
    rel = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(losses["fp32"], losses["bf16"])]
    return {"steps": steps, "fp32": losses["fp32"], "bf16": losses["bf16"], "max_relative_difference": max(rel),
            "final_relative_difference": rel[-1]}


def run_gpu_bench(preset: str, device: str | None, repeats: int = 5, warmup: int = 2, finetune_batch: int = 4,
                  loader_batches: int = 10, loss_steps: int = LOSS_STEPS, workdir: str | None = None) -> dict[str, Any]:
    """Every figure of the module docstring at ``preset`` on ``device`` (default: CUDA when available)."""
    if repeats < 1 or warmup < 0 or loss_steps < 1 or finetune_batch < 1:
        raise ValueError(f"repeats, loss steps and the fine-tuning batch must be >= 1 and warmup >= 0, got "
                         f"{repeats}, {loss_steps}, {finetune_batch}, {warmup}")
    from smart.bench.loader import run_loader_bench
    from smart.config import load_config
    from smart.resources.cards import CARDS

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    start = time.perf_counter()
    card, device_name = _card(dev)
    peak = CARDS[card].bf16_tflops * 1e12 if card else None
    fns, meta = {}, {}
    fns[ANCHOR], meta[ANCHOR] = monai_step_fn(preset, dev)
    fns["smart"], meta["smart"] = smart_step_fn("smart", preset, dev)
    times = interleaved_medians(fns, repeats, warmup, dev)
    steps: dict[str, Any] = {}
    for name, fn in fns.items():
        s = summarize(times[name])
        flops = step_flops(fn)
        steps[name] = {**s, "batch": meta[name]["batch"], "crop": meta[name]["crop"], "model_flops_per_step": flops,
                       "achieved_tflops": flops / s["median_s"] / 1e12,
                       "mfu": None if peak is None else flops / s["median_s"] / peak,
                       "samples_per_s": meta[name]["batch"] / s["median_s"]}
    steps["smart"]["ratio_vs_" + ANCHOR] = steps["smart"]["median_s"] / steps[ANCHOR]["median_s"]
    del fns
    memory = memory_rows(preset, dev, finetune_batch)
    agreement = loss_agreement(preset, dev, loss_steps)
    cfg = load_config("smart", preset, None, [])
    workers = int(cfg["data"]["num_workers"])
    loader = run_loader_bench(preset, num_workers=workers, n_cases=4, batches=loader_batches, workdir=workdir)
    consumed = steps["smart"]["samples_per_s"]
    return {"preset": preset, "device": str(dev), "device_name": device_name, "card": card,
            "card_bf16_peak_tflops": None if peak is None else peak / 1e12, "torch": torch.__version__,
            "steps": steps, "memory": memory, "loss_agreement": agreement,
            "loader": {"num_workers": workers, "samples_per_s": loader["samples_per_s"],
                       "step_samples_per_s": consumed, "loader_vs_step": loader["samples_per_s"] / consumed},
            "seconds": time.perf_counter() - start, "load_avg": list(os.getloadavg()),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _fmt(value: Any, spec: str, missing: str = NOT_APPLICABLE) -> str:
    return missing if value is None else format(value, spec)


def markdown(result: dict[str, Any], command: str) -> str:
    """The BENCHMARKS.md section of one run."""
    s, m = result["steps"], {r["step"]: r for r in result["memory"]}
    la, ld = result["loss_agreement"], result["loader"]
    # n/a: a CPU has no card-table peak; the memory model holds paper-width coefficients only
    lines = [f"### GPU acceptance: {result['device_name']} ({result['device']}, preset {result['preset']})", "",
             f"`{command}` — {result['date']}, torch {result['torch']}, {result['seconds']:.0f} s, load average "
             f"{result['load_avg'][0]:.2f}", "",
             "| measure | SMART | MONAI SwinUNETR-SSL |", "|---|---|---|",
             f"| step time (median s, batch {s['smart']['batch']} x {'x'.join(map(str, s['smart']['crop']))}) | "
             f"{s['smart']['median_s']:.3f} | {s[ANCHOR]['median_s']:.3f} |",
             f"| model TFLOP per step | {s['smart']['model_flops_per_step'] / 1e12:.4g} | "
             f"{s[ANCHOR]['model_flops_per_step'] / 1e12:.4g} |",
             f"| achieved TFLOP/s | {s['smart']['achieved_tflops']:.4g} | {s[ANCHOR]['achieved_tflops']:.4g} |",
             f"| MFU (card bf16 peak {_fmt(result['card_bf16_peak_tflops'], '.0f')} TFLOP/s) | "
             f"{_fmt(s['smart']['mfu'], '.3f')} | {_fmt(s[ANCHOR]['mfu'], '.3f')} |", "",
             "| step | crop x batch | precision | peak measured (GiB) | predicted (GiB) | error |",
             "|---|---|---|---|---|---|"]
    for name in ("pretrain", "finetune"):
        r = m[name]
        lines.append(f"| {name} | {r['crop']}^3 x {r['batch']} | {r['precision']} | {r['measured_gib']:.3f} "
                     f"({r['measured_with']}) | {_fmt(r['predicted_gib'], '.3f')} | "
                     f"{_fmt(None if r['relative_error'] is None else 100 * r['relative_error'], '+.1f')}"
                     f"{'' if r['relative_error'] is None else ' %'} |")
    lines += ["", f"bf16 vs fp32 loss over {la['steps']} steps: largest relative difference "
              f"{la['max_relative_difference']:.4f}, at the last step {la['final_relative_difference']:.4f}.",
              f"Loader ({ld['num_workers']} workers): {ld['samples_per_s']:.2f} samples/s vs the step's "
              f"{ld['step_samples_per_s']:.2f} samples/s (x{ld['loader_vs_step']:.2f}).", ""]
    return "\n".join(lines)


def write_gpu_bench(out_dir: str | os.PathLike, result: dict[str, Any], command: str) -> tuple[Path, Path]:
    from smart.atomic import write_json, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {**result, "command": command}
    return write_json(out / "gpu.json", result), write_text(out / "gpu.md", markdown(result, command))
