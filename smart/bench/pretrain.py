"""``smart bench pretrain``: one full pretraining step (forward, backward, clip, optimizer, EMA) of SMART and SMIT
against MONAI's SwinUNETR-SSL objective (:mod:`smart.bench.monai_ssl`) on the same MONAI SwinTransformer config, crop
and batch, timed round-robin in one process (issue "Performance and scale"; ratios are what count on noisy machines).

On CUDA it also reports model FLOPs per step (``torch.utils.flop_counter``) and MFU against a bf16 matmul peak
measured on the spot.
"""

from __future__ import annotations

import platform
from typing import Any, Callable

import torch

from smart.bench.monai_ssl import MonaiSwinSSL, monai_ssl_loss
from smart.bench.timing import PeakRSS, interleaved_medians, summarize, synchronize

ANCHOR = "monai_ssl"


def _autocast(device: torch.device, precision: str | None = None):
    """The trainer's precision: bf16 autocast on CUDA, fp32 on CPU. ``precision="bf16"`` forces CPU bf16 autocast
    (the memory model measures the configured precision on CPU); ``"fp32"`` forces it off."""
    if precision is None:
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision not in ("bf16", "fp32"):
        raise ValueError(f"precision must be 'bf16' or 'fp32', got {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def smart_step_fn(method: str, preset: str, device: torch.device, overrides: list[str] | None = None,
                  rank: int = 0, precision: str | None = None) -> tuple[Callable[[], torch.Tensor], dict[str, Any]]:
    """A closure running one training step of ``method`` exactly as :mod:`smart.train.pretrain` does; it returns the
    step's loss (detached, on the device).

    When a process group with more than one rank is initialised (``smart bench ddp``), the model is wrapped in
    ``DistributedDataParallel`` with the trainer's arguments and ``rank`` offsets the sample positions (so ranks draw
    different masks, as with the trainer's distributed sampler). The per-step all-reduce of the non-finite / stop
    flags (one host sync) is included because the trainer does it every step. ``precision``: :func:`_autocast`.
    ``meta["tracked"]`` holds the model, optimiser and the two views (what exists before a step: memory counters).
    """
    from smart.config import load_config
    from smart.ssl.sections import pretrain_sections
    from smart.train.pretrain import build_self_distillation
    from smart.train import distributed as dist_utils
    from smart.train.optim import build_optimizer, guarded_step

    cfg = load_config(method, preset, None, overrides or [])
    sections = pretrain_sections(cfg)
    torch.manual_seed(0)
    model = build_self_distillation(cfg).to(device)
    optimizer = build_optimizer(model.student_parameters(), sections.optim.lr, sections.optim.weight_decay, device)
    params = [p for _, p in model.student_parameters()]
    batch = sections.data.batch_size
    shape = (batch, 1, *sections.data.crop_size)
    gen = torch.Generator().manual_seed(0)
    u, v = torch.rand(shape, generator=gen).to(device), torch.rand(shape, generator=gen).to(device)
    positions = tuple(range(rank * batch, (rank + 1) * batch))
    total = sections.train.steps
    state = {"step": 0}
    forward: torch.nn.Module = model
    world = torch.distributed.get_world_size() if dist_utils.is_initialized() else 1
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                          find_unused_parameters=model.leaves_parameters_unused(),
                                          broadcast_buffers=False)

    def step() -> torch.Tensor:
        with _autocast(device, precision):
            loss, _ = forward(u, v, positions, state["step"])
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(params, sections.optim.clip_grad)
        # the training loop's step (smart.train.pretrain._Trainer.train_step): the skip is decided on the device
        bad = ~torch.isfinite(loss.detach()) | ~torch.isfinite(gnorm)
        if world > 1:
            bad = dist_utils.all_reduce_sum_(bad.float()) > 0
        guarded_step(optimizer, bad)
        optimizer.zero_grad(set_to_none=True)
        model.commit_centers(apply=~bad)
        model.update_teacher(state["step"], total, apply=~bad)
        state["step"] += 1
        return loss.detach()

    return step, {"batch": batch, "crop": list(sections.data.crop_size), "model": cfg["model"], "world_size": world,
                  "tracked": (model, optimizer, u, v)}


def monai_step_fn(preset: str, device: torch.device) -> tuple[Callable[[], None], dict[str, Any]]:
    """The anchor's step on the same encoder config, crop and batch as ``smart`` under ``preset``."""
    from smart.config import load_config

    cfg = load_config("smart", preset, None, [])
    m = cfg["model"]
    torch.manual_seed(0)
    model = MonaiSwinSSL(embed_dim=m["embed_dim"], depths=m["depths"], num_heads=m["num_heads"],
                         window_size=m["window_size"], patch_size=m["patch_size"],
                         drop_path_rate=m["drop_path_rate"]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(cfg["optim"]["lr"]))
    batch = int(cfg["data"]["batch_size"])
    x = torch.rand((batch, 1, *cfg["data"]["crop_size"]), generator=torch.Generator().manual_seed(0)).to(device)
    gen = torch.Generator().manual_seed(1)

    def step() -> None:
        with _autocast(device):
            loss = monai_ssl_loss(model, x, gen)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg["optim"]["clip_grad"]))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, {"batch": batch, "crop": list(cfg["data"]["crop_size"])}


def step_flops(fn: Callable[[], None]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def measured_bf16_peak(device: torch.device, n: int = 8192, repeats: int = 10) -> float:
    """Dense bf16 matmul throughput (FLOP/s) on this GPU: the denominator of MFU."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    synchronize(device)
    times = interleaved_medians({"mm": lambda: a @ b}, repeats, 0, device)["mm"]
    return 2 * n**3 / min(times)


def run_pretrain_bench(preset: str = "tiny", methods: tuple[str, ...] = ("smart", "smit"), repeats: int = 5,
                       warmup: int = 2, device: str | None = None) -> dict[str, Any]:
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    builders: dict[str, Callable[[], tuple[Callable[[], None], dict[str, Any]]]] = {
        ANCHOR: lambda: monai_step_fn(preset, dev)}
    for method in methods:
        builders[method] = lambda method=method: smart_step_fn(method, preset, dev)
    fns, info, memory = {}, {}, {}
    for name, build in builders.items():
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        with PeakRSS() as rss:
            fn, meta = build()
            fn()  # first step allocates optimizer state and gradients
            synchronize(dev)
        memory[name] = (torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else rss.extra_mb)
        fns[name], info[name] = fn, meta
    times = interleaved_medians(fns, repeats, warmup, dev)
    out: dict[str, Any] = {"preset": preset, "device": str(dev), "torch": torch.__version__,
                           "machine": {"cpu_count": torch.get_num_threads(), "platform": platform.platform(),
                                       "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None},
                           "results": {}}
    anchor_median = summarize(times[ANCHOR])["median_s"]
    peak = measured_bf16_peak(dev) if dev.type == "cuda" else None
    for name, ts in times.items():
        s = summarize(ts)
        rec: dict[str, Any] = {**s, "samples_per_s": info[name]["batch"] / s["median_s"],
                               "ratio_vs_" + ANCHOR: s["median_s"] / anchor_median,
                               ("peak_gpu_mem_mb" if dev.type == "cuda" else "peak_extra_rss_mb"): memory[name],
                               "batch": info[name]["batch"], "crop": info[name]["crop"]}
        if dev.type == "cuda":
            flops = step_flops(fns[name])
            rec["model_flops_per_step"] = flops
            rec["mfu"] = flops / s["median_s"] / peak
        out["results"][name] = rec
    if peak is not None:
        out["bf16_peak_flops"] = peak
    return out
