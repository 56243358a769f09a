"""Segmentation fine-tune: MONAI ``SwinUNETR`` started from a pretrained encoder or from scratch (docs/evaluation.md
"Segmentation fine-tune"; the MONAI BTCV recipe the paper's users follow after pretraining).

* **Model.** ``SwinUNETR(**swin_unetr_kwargs(model), out_channels=1 + len(structures))``; ``model`` is the ``model.*``
  section of the pretraining config at ``model_preset`` plus ``model`` overrides, so every variant (and scratch)
  has the same architecture. Pretrained weights come in MONAI's self-supervised layout
  (``smart export --format monai-ssl``) and are loaded with MONAI's own ``SwinUNETR.load_from``; a file that does not
  fit the architecture is an error naming it. ``weights="none"`` = scratch (seeded MONAI initialisation).
* **Training.** ``steps`` AdamW steps (constant ``lr``, MONAI's BTCV tutorial: 1e-4, weight decay 1e-5) on
  ``batch_size`` random crops of ``crop_size`` voxels from the ``train`` cases, loss ``DiceCELoss(to_onehot_y=True,
  softmax=True)``. A crop is centred on a labelled voxel with probability ``pos_fraction`` (else anywhere), as
  MONAI's ``RandCropByPosNegLabeld`` with pos:neg = pos_fraction:(1 - pos_fraction) does. No augmentation.
* **Selection and test.** Every ``val_every`` steps (and at the last step) the ``val`` cases are segmented with
  ``sliding_window_inference`` (window = ``crop_size``, ``overlap``) and scored with ``DiceMetric`` per structure;
  the weights with the highest mean validation Dice (first on ties) are kept and segment the ``test`` cases once.
  A structure absent from a case's ground truth is not scored on that case (``ignore_empty``); a structure absent
  from every case of a split has Dice ``null``.
* **Exact resume.** Crops depend on ``(seed, step)`` only and the checkpoint holds model, optimiser, best weights,
  history and RNG states, so on CPU ``N`` straight steps == ``N/2`` + ``resume`` + ``N/2`` bit for bit.

Run folder: ``config.json``, ``metrics.jsonl`` + ``tb/`` (loss and validation Dice; progress on stderr via
``smart.progress``: a bar on a terminal, a line with step, loss, samples/s and ETA in a batch log), ``checkpoint_last.pt``,
``model.pt`` (selected weights + the SwinUNETR arguments) and ``metrics.json`` (test Dice per structure and per case).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from smart.atomic import atomic_path, write_json
from smart.data.labelled_volumes import LabelledVolume, load_split, read_labelled_csv
from smart.downstream.sections import SegmentationSection, segmentation_section
from smart.models.monai_ssl import load_from_skipped, swin_unetr_kwargs
from smart.overlay import OPTIM_ALIASES, Layer, apply_layers, key_error, parse_set, read_yaml
from smart.preemption import StopFlag, TrainingInterrupted
from smart.provenance import provenance
from smart.run_logging import RunLogger
from smart.seeding import derive_seed, seed_everything
from smart.torch_files import read_torch_file
from smart.train.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint

DEFAULTS: dict[str, Any] = {
    "structures": ["lung", "heart", "liver", "tumour"],   # label value i+1 = structures[i]; 0 = background
    "steps": 200,
    "batch_size": 2,
    "crop_size": [64, 64, 64],        # SwinUNETR needs multiples of patch*2^5 and > 32 in training (instance norm)
    "lr": 1e-4,
    "weight_decay": 1e-5,
    "pos_fraction": 0.5,
    "val_every": 50,
    "checkpoint_every": 50,
    "log_every": 10,
    "sw_batch_size": 2,
    "overlap": 0.5,
    "spacing": 2.0,                   # mm; the pretraining grid. null = use the files' own grids
    "dropout_path_rate": 0.0,
    "seed": 0,
    "device": "auto",
    "model_preset": None,             # pretraining preset whose model.* section builds the network (tiny | paper)
    "model": {},                      # model.* overrides on top of it
}
# Type tags (smart.overlay); ranges and distinct structure names are checked by load_segmentation_config. What the
# training code reads of it is typed by smart.downstream.sections.SegmentationSection.
TYPES: dict[str, str] = {
    "structures": "strs:0",
    **{key: "int" for key in ("steps", "batch_size", "val_every", "checkpoint_every", "log_every", "sw_batch_size",
                              "seed")},
    **{key: "float" for key in ("lr", "weight_decay", "pos_fraction", "overlap", "dropout_path_rate")},
    "crop_size": "ints:3", "spacing": "?float", "device": "str", "model_preset": "?str", "model": "?dict",
}
_PURPOSE_CROPS = 41


# ---------------------------------------------------------------------------------------------- configuration
def load_segmentation_config(config_yaml: str | os.PathLike | None = None,
                             overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """DEFAULTS <- YAML (top level or under ``segmentation:``) <- ``--set key=value`` (``model.x=v`` nests), through
    the one layering loop (``smart.overlay.apply_layers``). Unknown keys and bad values raise ``ValueError`` naming
    the key, the value and what is allowed."""
    layers: list[Layer] = []
    if config_yaml is not None:
        data = read_yaml(config_yaml)
        layers.append((f"config file {config_yaml}", data.get("segmentation", data)))
    layers.append(("--set", parse_set(list(overrides or []))))
    cfg = apply_layers(DEFAULTS, layers, TYPES, what="segmentation", aliases=OPTIM_ALIASES)
    for key in TYPES:
        if TYPES[key] == "int" and cfg[key] < (0 if key == "seed" else 1):
            raise key_error("segmentation", key, cfg[key], f"an integer >= {0 if key == 'seed' else 1}")
    structures = cfg["structures"]
    if len(set(structures)) != len(structures):
        raise key_error("segmentation", "structures", structures, "a list of distinct names")
    if not 0.0 <= cfg["pos_fraction"] <= 1.0:
        raise key_error("segmentation", "pos_fraction", cfg["pos_fraction"], "a number in [0, 1]")
    if not 0.0 <= cfg["overlap"] < 1.0:
        raise key_error("segmentation", "overlap", cfg["overlap"], "a number in [0, 1)")
    if cfg["lr"] <= 0:
        raise key_error("segmentation", "lr", cfg["lr"], "a number > 0")
    if any(c < 64 or c % 32 for c in cfg["crop_size"]):
        raise key_error("segmentation", "crop_size", cfg["crop_size"], "3 multiples of 32 >= 64")
    return cfg


def model_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The encoder ``model.*`` config the network is built from (pretraining defaults at ``model_preset``)."""
    from smart.config import load_config

    overrides = {f"model.{k}": v for k, v in (cfg.get("model") or {}).items()}
    return dict(load_config("smart", cfg["model_preset"], None, overrides)["model"])


def build_model(cfg: Mapping[str, Any], weights: str | os.PathLike) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Seeded ``SwinUNETR`` with ``weights`` (MONAI self-supervised layout) loaded by ``load_from``, or scratch for
    ``"none"``; ``cfg`` is the resolved config (its network keys are read by :func:`model_config`, the rest through
    :class:`~smart.downstream.sections.SegmentationSection`). Returns ``(model, init)``; ``init`` records the file and
    the tensors ``load_from`` left at init."""
    from monai.networks.nets import SwinUNETR

    section = segmentation_section(cfg)
    kwargs = swin_unetr_kwargs(model_config(cfg))
    seed_everything(section.seed)
    model = SwinUNETR(**kwargs, out_channels=1 + len(section.structures), dropout_path_rate=section.dropout_path_rate)
    init: dict[str, Any] = {"weights": str(weights), "swin_unetr": {k: list(v) if isinstance(v, tuple) else v
                                                                    for k, v in kwargs.items()}}
    if str(weights) == "none":
        return model, {**init, "loaded": 0, "left_at_init": ["swinViT (scratch)"]}
    path = Path(weights)
    state = read_torch_file(path, "weights file", hint="pass 'none' to train from scratch")
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        raise ValueError(f"{path}: not MONAI self-supervised Swin weights (expected {{'state_dict': ...}}; "
                         f"write one with `smart export --format monai-ssl`)")
    try:
        model.load_from(state)
    except (KeyError, RuntimeError) as err:
        raise ValueError(f"{path}: does not fit SwinUNETR({kwargs}) ({type(err).__name__}: {err}); check "
                         f"segmentation.model_preset / model against the pretraining config") from err
    skipped = load_from_skipped(state["state_dict"])
    return model, {**init, "loaded": len(state["state_dict"]) - len(skipped), "left_at_init": skipped}


# ---------------------------------------------------------------------------------------------- data
def sample_crops(volumes: Sequence[LabelledVolume], foreground: Sequence[np.ndarray], step: int,
                 section: SegmentationSection) -> tuple[torch.Tensor, torch.Tensor]:
    """The training batch of ``step``: ``(x (B, 1, *crop) float32, y (B, 1, *crop) int64)``, a function of
    ``(seed, step)`` only. ``foreground[i]`` = flat indices of labelled voxels of ``volumes[i]``. Crops that leave a
    small volume are zero-padded (0 = air in the image, background in the label)."""
    rng = np.random.default_rng(derive_seed(section.seed, _PURPOSE_CROPS, step))
    crop = np.asarray(section.crop_size, dtype=int)
    xs, ys = [], []
    for _ in range(section.batch_size):
        i = int(rng.integers(len(volumes)))
        vol, fg = volumes[i], foreground[i]
        shape = np.asarray(vol.image.shape)
        if rng.random() < section.pos_fraction and fg.size:
            centre = np.asarray(np.unravel_index(int(fg[rng.integers(fg.size)]), vol.image.shape))
        else:
            centre = np.asarray([rng.integers(s) for s in shape])
        start = np.clip(centre - crop // 2, 0, np.maximum(shape - crop, 0))
        src = tuple(slice(int(a), int(min(a + c, n))) for a, c, n in zip(start, crop, shape))
        dst = tuple(slice(0, s.stop - s.start) for s in src)
        x = np.zeros(crop, np.float32)
        y = np.zeros(crop, np.int64)
        x[dst], y[dst] = vol.image[src], vol.label[src]
        xs.append(x)
        ys.append(y)
    return torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ys))[:, None]


# ---------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def segment(model: torch.nn.Module, image: np.ndarray, section: SegmentationSection,
            device: torch.device) -> torch.Tensor:
    """Label map ``(D, H, W)`` int64 of one volume: sliding-window softmax logits, argmax over classes."""
    from monai.inferers import sliding_window_inference

    model.eval()
    x = torch.from_numpy(image)[None, None].to(device)
    logits = sliding_window_inference(x, section.crop_size, section.sw_batch_size, model, overlap=section.overlap,
                                      mode="gaussian")
    return logits.argmax(dim=1)[0].cpu()


def dice_per_structure(pred: torch.Tensor, truth: torch.Tensor, n_structures: int) -> list[float | None]:
    """MONAI ``DiceMetric`` (background excluded) of label maps ``(D, H, W)``: one Dice per structure, ``None`` where
    the structure is absent from ``truth``."""
    from monai.metrics import DiceMetric
    from monai.networks.utils import one_hot

    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    n = n_structures + 1
    scores = metric(one_hot(pred[None, None], n), one_hot(torch.as_tensor(truth)[None, None], n))[0]
    return [None if math.isnan(float(s)) else float(s) for s in scores]


def evaluate(model: torch.nn.Module, volumes: Sequence[LabelledVolume], section: SegmentationSection,
             device: torch.device) -> tuple[dict[str, float | None], dict[str, dict[str, float | None]]]:
    """``(mean Dice per structure over cases that contain it, {case_id: {structure: Dice}})``."""
    names = list(section.structures)
    per_case = {}
    for vol in volumes:
        scores = dice_per_structure(segment(model, vol.image, section, device), torch.from_numpy(vol.label), len(names))
        per_case[vol.case_id] = dict(zip(names, scores))
    means = {}
    for name in names:
        values = [c[name] for c in per_case.values() if c[name] is not None]
        means[name] = float(np.mean(values)) if values else None
    return means, per_case


def mean_dice(scores: Mapping[str, float | None]) -> float | None:
    values = [v for v in scores.values() if v is not None]
    return float(np.mean(values)) if values else None


# ---------------------------------------------------------------------------------------------- training
def _device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def train_segmentation(cfg: Mapping[str, Any], csv: str | os.PathLike, weights: str | os.PathLike,
                       out_dir: str | os.PathLike, *, resume: bool = False, max_steps: int | None = None) -> dict:
    """Fine-tune and test one SwinUNETR (module docstring); returns the ``metrics.json`` record, or, when
    ``max_steps`` stops the run before ``steps``, ``{"step": ...}`` after writing ``checkpoint_last.pt``. ``cfg`` is
    the resolved config (:func:`load_segmentation_config`): training reads its
    :class:`~smart.downstream.sections.SegmentationSection`; the dict itself is what ``config.json``, ``metrics.json``,
    provenance and the checkpoint (compared on ``resume``) record."""
    from monai.losses import DiceCELoss

    section = segmentation_section(cfg)
    out = Path(out_dir)
    frame = read_labelled_csv(csv)
    n_struct = len(section.structures)
    train = load_split(frame, "train", n_struct, section.spacing)
    val = load_split(frame, "val", n_struct, section.spacing)
    foreground = [np.flatnonzero(v.label) for v in train]
    device = _device(section.device)
    model, init = build_model(cfg, weights)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=section.lr, weight_decay=section.weight_decay)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    total = section.steps
    stop_at = total if max_steps is None else min(total, int(max_steps))
    step, best, history = 0, {"score": None, "step": 0, "model": None}, []
    logger = RunLogger(out)
    ckpt = out / "checkpoint_last.pt"
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, map_location=device)
        if state["config"] != dict(cfg) or state["weights"] != str(weights):
            raise ValueError(f"{ckpt} was written with another config or weights file; use a fresh --out folder")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, best, history = int(state["step"]), state["best"], list(state["history"])
        restore_rng_state(state["rng"][0])
        logger.truncate_after(step)
    logger.write_config(dict(cfg), {"weights": str(weights), "csv": str(csv), "init": init, "seed": section.seed,
                                    "n_train": len(train), "n_val": len(val)})

    def save() -> None:
        save_checkpoint(ckpt, {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "best": best, "history": history, "rng": [capture_rng_state()],
                               "config": dict(cfg), "weights": str(weights)})

    bar = logger.progress(stop_at, initial=step, desc="segmentation", unit="step")
    window_loss, window_n, window_start = 0.0, 0, time.perf_counter()
    # SIGTERM/SIGUSR1 (SLURM walltime warning): finish the step, checkpoint, exit 75 (smart.preemption)
    try:
        with StopFlag() as stop:
            while step < stop_at:
                x, y = sample_crops(train, foreground, step, section)
                model.train()
                loss = loss_fn(model(x.to(device)), y.to(device))
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite segmentation loss {loss.item()} at step {step} (lower lr?)")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                window_loss, window_n = window_loss + float(loss.detach()), window_n + 1
                bar.update(1, samples=section.batch_size, loss=loss.detach())
                if step % section.log_every == 0 or step == stop_at:
                    logger.log({"step": step, "loss": window_loss / window_n,
                                "time_per_step": (time.perf_counter() - window_start) / window_n})
                    window_loss, window_n, window_start = 0.0, 0, time.perf_counter()
                if step % section.val_every == 0 or step == total:
                    scores, _ = evaluate(model, val, section, device)
                    score = mean_dice(scores)
                    history.append({"step": step, "val_dice": scores, "val_dice_mean": score})
                    logger.log({"step": step, "val/dice_mean": score,
                                **{f"val/dice/{k}": v for k, v in scores.items() if v is not None}})
                    if score is not None and (best["score"] is None or score > best["score"]):
                        best = {"score": score, "step": step,
                                "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
                if step % section.checkpoint_every == 0 or step == stop_at or stop.stopping:
                    save()
                if stop.stopping and step < total:
                    raise TrainingInterrupted(f"stop signal received after step {step}; wrote {ckpt} "
                                              f"(rerun with --resume)")
    finally:
        bar.close()
        logger.close()
    if step < total:
        return {"step": step}
    return _finish(model, best, history, init, cfg, section, frame, csv, weights, out, device)


def _finish(model, best, history, init, cfg, section: SegmentationSection, frame, csv, weights, out: Path,
            device) -> dict:
    """Test the selected weights once; write ``model.pt`` and ``metrics.json`` (which records the ``cfg`` dict)."""
    if best["model"] is not None:
        model.load_state_dict(best["model"])
    test = load_split(frame, "test", len(section.structures), section.spacing)
    scores, per_case = evaluate(model, test, section, device)
    with atomic_path(out / "model.pt", suffix=".pt") as tmp:
        torch.save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "swin_unetr": init["swin_unetr"], "out_channels": 1 + len(section.structures),
                    "structures": list(section.structures), "selected_step": int(best["step"])}, tmp)
    record = {
        "kind": "segmentation", "weights": str(weights), "csv": str(csv), "structures": list(section.structures),
        "test": {"dice": scores, "dice_mean": mean_dice(scores), "per_case": per_case, "n": len(test)},
        "val": {"dice_mean": best["score"], "selected_step": int(best["step"])},
        "n_train": int((frame["split"] == "train").sum()), "n_val": int((frame["split"] == "val").sum()),
        "init": init, "history": history, "config": dict(cfg),
        "provenance": provenance({**dict(cfg), "weights": str(weights)}, seed=section.seed),
    }
    write_json(out / "metrics.json", record)
    return record


__all__ = ["DEFAULTS", "TYPES", "build_model", "dice_per_structure", "evaluate", "load_segmentation_config", "sample_crops",
           "segment", "train_segmentation"]
