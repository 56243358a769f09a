"""``smart bench memory``: measure the memory model of every GPU rule on CPU (``smart/resources/memory_coefficients.json``).

Each GPU rule group runs the package's own step once at the paper width (embed_dim 48, depths 2-2-8-2) on real CPU
tensors, counting the peak bytes of live tensors (parameters, gradients,
optimiser state, activations, temporaries — the CPU counterpart of ``torch.cuda.max_memory_allocated``; counted by
:class:`LiveBytes`, a dispatch mode that sees every storage an op returns and when it is freed) with autograd
saved-tensor hooks counting the bytes the backward pass keeps (each storage once, parameters excluded):

* ``pretrain``: :func:`smart.bench.pretrain.smart_step_fn` (SMART at the ``paper`` preset: both views through student
  and teacher, backward, clip, AdamW, EMA) — the trainer's step;
* ``finetune``: :func:`smart.downstream.finetune.train_epoch` on one micro-batch of ``EncoderClassifier`` (head
  ``cls``) under ``precision`` fp32 / bf16, with and without ``activation_checkpointing``;
* ``features`` (rules ``linear_probe`` and ``embed``): :func:`smart.downstream.features.extract_features`;
* ``attention`` (rules ``zeroshot`` and ``attention_maps``): :func:`smart.eval.attention_maps.attention_volumes`;
* ``segmentation``: SwinUNETR (:func:`smart.downstream.segmentation.build_model`) + DiceCE + AdamW, one step.

Why real tensors at small crops and a linear fit: every activation of a Swin step is proportional to the number of
voxels in the batch (window attention is local; the one global attention, the SA block on the stage-3 grid, holds
(V/16^3)^2 scores, 0.3 MB at 128^3), so the forward + backward peak is ``fixed + per_voxel * voxels * batch``; the
optimiser step's peak is a constant beside it (:func:`fit_points`). Below 64^3 a voxel-independent phase (heads,
stage 4, the SA block) sets the peak, so the fit uses 64^3 x 1, 64^3 x 2 and 96^3 x 1; the paper's own crop,
128^3 x 1, is measured and predicted, never fitted, and its error is kept in the file (BENCHMARKS.md "Memory
model"). A run at the paper's batch (128^3 x 40) would take hours and ~130 GiB on this CPU; the per-voxel slope
is what carries it there. Precision: the configured one, on CPU (``bf16`` = CPU bf16 autocast;
CUDA autocast keeps LayerNorm and softmax in fp32, so a CUDA bf16 step sits between the CPU bf16 and fp32 figures —
fine-tuning is measured under both; ``smart bench gpu`` compares the prediction with ``torch.cuda.max_memory_allocated``).
"""

from __future__ import annotations

import os
import weakref
import platform
import time
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

PAPER = "paper"
COMMAND = "python -m smart bench memory"
# (crop edge, batch): fitted points, then the held-out point (never fitted).
FIT_POINTS = ((64, 1), (64, 2), (96, 1))
HELD_OUT = (128, 1)
GIB = 2**30


class LiveBytes(TorchDispatchMode):
    """Peak bytes of live tensor storages while active: ``baseline`` (what exists before: parameters, buffers,
    inputs) plus every storage an op creates, until it is freed. (torch's own ``MemTracker`` refuses modules
    holding frozen parameters, which SMART's teacher and weight-normed prototype layers are.)"""

    def __init__(self, baseline: int = 0) -> None:
        super().__init__()
        self.baseline = baseline
        self.current = 0
        self.peak = 0
        self.forward_backward_peak: int | None = None  # the peak before the first optimiser step ...
        self.optimizer_peak: int | None = None  # ... and from it on
        self._live = WeakIdKeyDictionary()
        self._hook = None

    def __enter__(self):
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        self._hook = register_optimizer_step_pre_hook(self._optimizer_starts)
        return super().__enter__()

    def __exit__(self, *exc):
        self._hook.remove()
        return super().__exit__(*exc)

    def _optimizer_starts(self, optimizer, args, kwargs) -> None:
        if self.forward_backward_peak is None:
            self.forward_backward_peak = self.baseline + self.peak
            self.optimizer_peak = self.baseline + self.current

    def _free(self, nbytes: int) -> None:
        self.current -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                if storage not in self._live:
                    nbytes = storage.nbytes()
                    self._live[storage] = nbytes
                    self.current += nbytes
                    weakref.finalize(storage, self._free, nbytes)
        self.peak = max(self.peak, self.current)
        if self.optimizer_peak is not None:
            self.optimizer_peak = max(self.optimizer_peak, self.baseline + self.current)
        return out

    @property
    def peak_bytes(self) -> int:
        return self.baseline + self.peak


def existing_bytes(objects: Sequence[Any]) -> int:
    """Bytes of the distinct storages of modules' parameters, gradients and buffers, optimisers' state and plain
    tensors in ``objects``."""
    storages = {}
    for obj in objects:
        if isinstance(obj, torch.nn.Module):
            tensors = [*obj.parameters(), *obj.buffers(), *(p.grad for p in obj.parameters() if p.grad is not None)]
        elif isinstance(obj, torch.optim.Optimizer):
            tensors = [v for state in obj.state.values() for v in state.values() if isinstance(v, torch.Tensor)]
        else:
            tensors = [obj] if isinstance(obj, torch.Tensor) else []
        for t in tensors:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(storages.values())


class SavedBytes:
    """Saved-tensor hooks that add up the distinct storages autograd keeps for backward (parameters excluded)."""

    def __init__(self, exclude: Sequence[torch.Tensor] = ()) -> None:
        self.skip = {p.untyped_storage().data_ptr() for p in exclude}
        self.seen: set[int] = set()
        self.bytes = 0

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self.skip and ptr not in self.seen:
            self.seen.add(ptr)
            self.bytes += storage.nbytes()
        return tensor

    @staticmethod
    def unpack(tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack)


Step = tuple[Callable[[], Any], tuple[Any, ...]]  # (one step, objects whose tensors the tracker attributes)


def _cube(edge: int) -> list[int]:
    return [edge, edge, edge]


def pretrain_step(edge: int, batch: int, settings: dict[str, Any]) -> Step:
    from smart.bench.pretrain import smart_step_fn

    step, meta = smart_step_fn("smart", settings.get("preset", PAPER), torch.device(settings.get("device", "cpu")),
                               [f"data.crop_size={_cube(edge)}", f"data.batch_size={batch}"],
                               precision=settings["precision"])
    return step, meta["tracked"]


def _paper_encoder(edge: int, preset: str = PAPER):
    from smart.downstream.protocol import DEFAULTS, build_scratch_encoder

    encoder, _ = build_scratch_encoder({**DEFAULTS, "scratch_preset": preset, "crop_size": _cube(edge)})
    return encoder


def finetune_step(edge: int, batch: int, settings: dict[str, Any]) -> Step:
    """One optimiser step of :func:`smart.downstream.finetune.train_epoch` on ``batch`` samples = one micro-batch
    (accumulation keeps one micro-batch in flight; the effective batch waits on the host), with the run's
    ``precision`` (``amp_dtype``) and ``activation_checkpointing``."""
    from smart.downstream.finetune import train_epoch
    from smart.downstream.protocol import autocast_dtype
    from smart.models.activation_checkpointing import set_activation_checkpointing
    from smart.models.classifier import EncoderClassifier

    device = torch.device(settings.get("device", "cpu"))
    torch.manual_seed(0)
    model = EncoderClassifier(_paper_encoder(edge, settings.get("preset", PAPER)), head="cls", n_classes=2).to(device)
    if settings.get("activation_checkpointing"):
        set_activation_checkpointing(model, True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    x = torch.rand((batch, 1, *_cube(edge)), generator=torch.Generator().manual_seed(0)).to(device)
    y = (torch.arange(batch) % 2).to(device)
    amp = autocast_dtype(settings["precision"], device)

    def step() -> None:
        train_epoch(model, [(x, y)], optimizer, device, micro_batch=batch, amp_dtype=amp)

    return step, (model, optimizer, x)


def features_step(edge: int, batch: int, settings: dict[str, Any]) -> Step:
    from smart.downstream.features import extract_features

    torch.manual_seed(0)
    encoder = _paper_encoder(edge)
    x = torch.rand((batch, 1, *_cube(edge)), generator=torch.Generator().manual_seed(0))
    return (lambda: extract_features(encoder, x, batch_size=batch)), (encoder, x)


def attention_step(edge: int, batch: int, settings: dict[str, Any]) -> Step:
    from smart.eval.attention_maps import attention_volumes

    torch.manual_seed(0)
    encoder = _paper_encoder(edge)
    x = torch.rand((batch, 1, *_cube(edge)), generator=torch.Generator().manual_seed(0))
    return (lambda: attention_volumes(encoder, x)), (encoder, x)


def segmentation_step(edge: int, batch: int, settings: dict[str, Any]) -> Step:
    from monai.losses import DiceCELoss

    from smart.downstream.sections import segmentation_section
    from smart.downstream.segmentation import build_model, load_segmentation_config

    cfg = load_segmentation_config(None, [f"model_preset={PAPER}", f"crop_size={_cube(edge)}",
                                          f"batch_size={batch}"])
    section = segmentation_section(cfg)
    model, _ = build_model(cfg, "none")
    optimizer = torch.optim.AdamW(model.parameters(), lr=section.lr, weight_decay=section.weight_decay)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((batch, 1, *_cube(edge)), generator=gen)
    y = torch.randint(0, 1 + len(section.structures), (batch, 1, *_cube(edge)), generator=gen)

    def step() -> None:
        model.train()
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, (model, optimizer, x, y)


# coefficient key -> (step builder, settings variants measured, fit points, held-out point)
STEPS: dict[str, tuple[Callable[[int, int, dict[str, Any]], Step], tuple[dict[str, Any], ...], tuple, tuple]] = {
    "pretrain": (pretrain_step, ({"precision": "bf16"},), FIT_POINTS, HELD_OUT),
    "finetune": (finetune_step, ({"precision": "fp32"}, {"precision": "bf16"},
                                 {"precision": "bf16", "activation_checkpointing": True},
                                 {"precision": "fp32", "activation_checkpointing": True}), FIT_POINTS, HELD_OUT),
    "features": (features_step, ({"precision": "fp32"},), FIT_POINTS, HELD_OUT),
    "attention": (attention_step, ({"precision": "fp32"},), FIT_POINTS, HELD_OUT),
    "segmentation": (segmentation_step, ({"precision": "fp32"},), FIT_POINTS, HELD_OUT),
}


def variant_key(settings: dict[str, Any]) -> str:
    """``fp32``, ``bf16``, ``bf16+checkpointing``: the settings a coefficient set was measured under."""
    return settings["precision"] + ("+checkpointing" if settings.get("activation_checkpointing") else "")


def measure_point(build: Callable[[int, int, dict[str, Any]], Step], edge: int, batch: int,
                  settings: dict[str, Any]) -> dict[str, Any]:
    """A steady-state step at ``edge^3 x batch``: one untracked warm-up step (it creates the optimiser state), then
    one counted step: peak live-tensor bytes, the peak before its optimiser step (forward + backward; ``None`` for an
    inference step), saved-for-backward bytes, parameter count and wall time (1 thread; indicative only)."""
    step, tracked = build(edge, batch, settings)
    params = list({id(p): p for obj in tracked if isinstance(obj, torch.nn.Module) for p in obj.parameters()}.values())
    step()
    saved = SavedBytes(exclude=params)
    live = LiveBytes(existing_bytes(tracked))
    start = time.perf_counter()
    with live, saved.hooks():
        step()
    seconds = time.perf_counter() - start
    return {"crop": edge, "batch": batch, "voxels_x_batch": edge**3 * batch, "peak_bytes": live.peak_bytes,
            "forward_backward_peak_bytes": live.forward_backward_peak, "optimizer_peak_bytes": live.optimizer_peak,
            "baseline_bytes": live.baseline,
            "saved_bytes": saved.bytes, "parameters": sum(p.numel() for p in params), "seconds": round(seconds, 2)}


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``y = intercept + slope * x``."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("the fit points need at least two different voxels x batch")
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - slope * mx, slope


def fit_points(points: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The two-phase model of a step from measured points: the forward + backward peak grows linearly with voxels x
    batch (``fixed_bytes + bytes_per_voxel * v``); the optimiser step's peak (parameters + gradients + AdamW state +
    its temporaries) does not depend on it (``optimizer_bytes``: the largest measured; 0 for inference)."""
    xs = [float(p["voxels_x_batch"]) for p in points]
    fb = [float(p["forward_backward_peak_bytes"] if p["forward_backward_peak_bytes"] is not None else p["peak_bytes"])
          for p in points]
    fixed, per_voxel = fit_line(xs, fb)
    return {"fixed_bytes": fixed, "bytes_per_voxel": per_voxel,
            "optimizer_bytes": float(max(p["optimizer_peak_bytes"] or 0 for p in points)),
            "saved_bytes_per_voxel": fit_line(xs, [float(p["saved_bytes"]) for p in points])[1]}


def step_flops_per_voxel(build: Callable[[int, int, dict[str, Any]], Step], settings: dict[str, Any]) -> float:
    """Model FLOPs (``torch.utils.flop_counter``) of one step at 64^3 x 1, per voxel."""
    from torch.utils.flop_counter import FlopCounterMode

    edge = 64
    step, _ = build(edge, 1, settings)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / edge**3


def measure_rule(key: str, settings: dict[str, Any], log: Callable[[str], None] = print) -> dict[str, Any]:
    build, _, points, held = STEPS[key]
    fitted = []
    for edge, batch in points:
        fitted.append(measure_point(build, edge, batch, settings))
        log(f"  {key} {variant_key(settings)} {edge}^3 x {batch}: peak {fitted[-1]['peak_bytes'] / GIB:.3f} GiB "
            f"({fitted[-1]['seconds']} s)")
    from smart.resources.memory import predict_from

    model = fit_points(fitted)
    check = measure_point(build, *held, settings)
    predicted = predict_from(model, check["voxels_x_batch"])
    error = (predicted - check["peak_bytes"]) / check["peak_bytes"]
    log(f"  {key} {variant_key(settings)} held out {held[0]}^3 x {held[1]}: measured "
        f"{check['peak_bytes'] / GIB:.3f} GiB, predicted {predicted / GIB:.3f} GiB ({100 * error:+.1f} %)")
    return {**model,
            "flops_per_voxel": step_flops_per_voxel(build, settings),
            "fit": fitted, "held_out": {**check, "predicted_bytes": predicted, "relative_error": error}}


def run_memory_bench(rules: Sequence[str] | None = None, out: str | os.PathLike | None = None,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure ``rules`` (default: all of :data:`STEPS`, every settings variant) and write the coefficients file
    (``out``; default the package's ``smart/resources/memory_coefficients.json``), keeping the other rules'
    entries of an existing file. Returns the whole file's content."""
    from smart.atomic import write_json
    from smart.resources.memory import COEFFICIENTS_FILE, load_coefficients

    unknown = sorted(set(rules or ()) - set(STEPS))
    if unknown:
        raise ValueError(f"unknown memory-model step(s) {unknown}; known: {sorted(STEPS)}")
    path = out or COEFFICIENTS_FILE
    try:
        data = load_coefficients(path)
    except ValueError:
        data = {"steps": {}}
    torch.set_num_threads(1)
    data.update({"command": COMMAND, "torch": torch.__version__, "platform": platform.platform(),
                 "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "fit_points": {k: {"fit": v[2], "held_out": v[3]} for k, v in STEPS.items()}})
    for key in rules or STEPS:
        variants = {}
        for settings in STEPS[key][1]:
            variants[variant_key(settings)] = measure_rule(key, settings, log)
        data["steps"][key] = variants
        data["load_avg"] = list(os.getloadavg())
        write_json(path, data)  # after each step: a long run interrupted keeps what it measured
    return data


def held_out_table(data: dict[str, Any], steps: Sequence[str] | None = None) -> str:
    """Markdown rows of ``steps`` (default: all in ``data``), every variant: the fitted line, the held-out size,
    measured vs predicted."""
    rows = ["| step | settings | fitted at (crop^3 x batch) | fixed (GiB) | per 128^3 volume (GiB) | optimiser phase (GiB) "
            "| held out | measured (GiB) | predicted (GiB) | error |", "|---|---|---|---|---|---|---|---|---|---|"]
    for step in steps or list(data["steps"]):
        for variant, c in data["steps"][step].items():
            h = c["held_out"]
            fitted = ", ".join(f"{p['crop']} x {p['batch']}" for p in c["fit"])
            rows.append(f"| {step} | {variant} | {fitted} | {c['fixed_bytes'] / GIB:.3f} | "
                        f"{c['bytes_per_voxel'] * 128**3 / GIB:.3f} | {c['optimizer_bytes'] / GIB:.3f} | "
                        f"{h['crop']} x {h['batch']} | {h['peak_bytes'] / GIB:.3f} | {h['predicted_bytes'] / GIB:.3f} | "
                        f"{100 * h['relative_error']:+.1f} % |")
    return "\n".join(rows)


__all__ = ["COMMAND", "STEPS", "LiveBytes", "SavedBytes", "existing_bytes", "fit_line", "fit_points", "held_out_table",
           "measure_point", "measure_rule", "run_memory_bench", "variant_key"]
