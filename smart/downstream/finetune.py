"""Supervised fine-tuning of a (pre)trained encoder on a binary cohort (paper Sec. IV-C/IV-D, Tables II-IV, Fig. 6).

One run = one fold k: train on the inner training part of the folds != k (a stratified ``fraction`` of it for the
limited-data study), select the epoch on the inner validation split, predict fold k and the test set once, at the
end (``smart.downstream.protocol``; docs/evaluation.md "Selection"). Optimiser AdamW with a constant learning rate
(paper: batch 40, lr 2e-4, 1,000 epochs on LIDC, 2,000 on immunotherapy), cross-entropy on 2 logits,
P(label 1) = softmax[:, 1].

Model selection (``selection``): ``best_val_auc`` keeps the weights of the epoch with the highest inner-validation
AUC (first such epoch on ties); ``last`` keeps the last epoch. Early stopping (``patience`` N, with ``best_val_auc``)
ends the run after N epochs without a higher inner-validation AUC. Neither ever sees fold k or the test set: in a
cross-validation-only task fold k is the reported result (the paper's treatment response).

Fitting a GPU (docs/evaluation.md "Fitting a GPU"; issue 18): ``batch_size`` is the effective batch of one optimiser
step (40 in the paper); ``micro_batch_size`` samples at a time go through the model and their gradients accumulate
into exactly the whole batch's (:func:`accumulate_gradients`); ``activation_checkpointing`` recomputes each Swin/ViT
block in backward; ``precision`` ``auto`` runs bf16 autocast on CUDA and fp32 on CPU; ``num_workers`` loader processes
prepare the next batch (augmentation draws depend on ``(seed, epoch, sample)`` only, not on the worker count).

Resume (like pretraining, ``smart.train.pretrain``): every ``checkpoint_every`` epochs and on SIGTERM/SIGUSR1 (after
the current epoch; exit code 75) the run writes ``out_dir/checkpoint_last.pt`` atomically: model, optimiser, history,
the best epoch's weights so far. Every random stream (shuffle order, augmentation, dropout / drop path) is reseeded
from ``(seed, epoch)`` at the start of each epoch, so ``--resume`` continues bit for bit on CPU. A checkpoint is
continued only when its config (all keys but the epoch budget and bookkeeping, :data:`RESUME_IGNORED`) and its inputs
(SHA-256 of the encoder file, cohort CSV and splits file; fold, fraction, head) equal the run's; otherwise the run
starts fresh and says why on stderr. A finished run deletes its checkpoint (``metrics.json`` is the result).
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from smart.atomic import atomic_path
from smart.data.views import derive_seed
from smart.downstream.metrics import binary_metrics
from smart.downstream.protocol import (FoldData, autocast_dtype, load_any_encoder, resolve_device, select_fold,
                                       set_seed, write_metrics)
from smart.downstream.sections import FinetuneSection, finetune_section
from smart.models.activation_checkpointing import set_activation_checkpointing
from smart.preemption import StopFlag, TrainingInterrupted
from smart.provenance import file_sha256
from smart.run_logging import RunLogger

CHECKPOINT = "checkpoint_last.pt"
FORMAT = "smart-finetune-checkpoint/1"
# Keys that do not change what is trained: the epoch budget (raise it to extend a run), bookkeeping, and the memory
# knobs that keep the effective batch (a requeued job may land on a smaller card; the result then differs from an
# uninterrupted run by float summation order only).
RESUME_IGNORED = frozenset({"epochs", "num_workers", "checkpoint_every", "micro_batch_size",
                            "activation_checkpointing"})
_PURPOSE_EPOCH = 41


def _loader(frame: pd.DataFrame, section: FinetuneSection, train: bool, device: torch.device,
            generator: torch.Generator | None = None) -> DataLoader:
    """Training batches are the effective ``batch_size`` (split into micro-batches by :func:`accumulate_gradients`);
    evaluation batches are ``micro_batch_size`` (what fits with gradients fits without). Workers are not persistent:
    the per-epoch augmentation seed (``set_augmentation_seed``) reaches them when each epoch's iterator starts."""
    from smart.data.cohort_dataset import CohortDataset

    ds = CohortDataset(frame, crop_size=section.crop_size, augment=section.augment and train, seed=section.seed)
    batch = section.batch_size if train else section.micro_batch
    return DataLoader(ds, batch_size=batch, shuffle=train, generator=generator, num_workers=section.num_workers,
                      pin_memory=device.type == "cuda", drop_last=False)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device: torch.device, amp_dtype: torch.dtype | None = None) -> np.ndarray:
    """P(label 1) for every sample of ``loader`` in order (eval mode; under ``amp_dtype`` autocast when given)."""
    model.eval()
    probs = []
    for x, _ in loader:
        with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            logits = model(x.to(device, non_blocking=True).float())
        probs.append(torch.softmax(logits.float(), dim=1)[:, 1].cpu())
    return torch.cat(probs).numpy() if probs else np.zeros(0)


def class_weights(labels: np.ndarray, n_classes: int = 2) -> torch.Tensor:
    """Inverse-frequency weights ``n / (k · n_c)`` (scikit-learn's "balanced"); a missing class gets weight 0."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=n_classes).astype(float)
    weights = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def accumulate_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
                         micro_batch: int, weight: torch.Tensor | None = None,
                         amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Backpropagate the cross-entropy of one effective batch ``x`` ``(B, C, D, H, W)``, ``y`` ``(B,)`` in
    micro-batches of ``micro_batch`` samples, adding into ``.grad``; returns the batch loss (detached, on ``device``).

    The loss is that of ``F.cross_entropy(model(x), y, weight=weight)`` on the whole batch: the (class-weighted) mean
    ``Σ w_yi·l_i / Σ w_yi`` with the denominator taken over all ``B`` samples, not per micro-batch (a per-micro-batch
    weighted mean would weigh micro-batches of different class mixes unequally). So the accumulated gradients equal
    the whole batch's for a model whose samples do not interact (LayerNorm / InstanceNorm, no BatchNorm), up to
    float summation order; stochastic layers (drop path, dropout) draw other, equally distributed samples per
    micro-batch. Logits are cast to fp32 before the loss under autocast; ``x`` keeps its dtype (float32 from the
    loader; the tests run float64).
    """
    y = y.to(device, non_blocking=True).long()
    dtype = torch.float32 if amp_dtype is not None else x.dtype
    w = torch.ones(y.shape, device=device, dtype=dtype) if weight is None else weight.to(device, dtype)[y]
    denominator = w.sum()
    total = torch.zeros((), device=device, dtype=dtype)
    for xs, ys, ws in zip(x.split(micro_batch), y.split(micro_batch), w.split(micro_batch)):
        with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            logits = model(xs.to(device, non_blocking=True))
        logits = logits if amp_dtype is None else logits.float()
        part = (F.cross_entropy(logits, ys, reduction="none") * ws.to(logits.dtype)).sum() / denominator
        part.backward()
        total += part.detach()
    return total


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, device: torch.device,
                weight: torch.Tensor | None = None, micro_batch: int | None = None,
                amp_dtype: torch.dtype | None = None) -> float:
    """One epoch, one optimiser step per batch of the loader; returns the sample-weighted mean training loss.

    The loss stays on the device during the epoch (no host sync per step); a non-finite epoch loss raises
    ``FloatingPointError`` before anything is logged or checkpointed."""
    model.train()
    total, n = torch.zeros((), dtype=torch.float64, device=device), 0
    for x, y in loader:
        y = torch.as_tensor(y)
        optimizer.zero_grad(set_to_none=True)
        loss = accumulate_gradients(model, x, y, device, micro_batch or len(y), weight, amp_dtype)
        optimizer.step()
        total += loss.double() * len(y)
        n += len(y)
    mean = float(total) / max(n, 1)
    if not np.isfinite(mean):
        raise FloatingPointError(f"non-finite fine-tuning loss {mean} (lower lr?)")
    return mean


def run_inputs(encoder: str, cohort: str | os.PathLike, splits: str | os.PathLike, fold: int, fraction: float,
               head: str) -> dict[str, Any]:
    """What a fine-tuning checkpoint must share with a run to be resumed: file digests and the fold selection."""
    return {"encoder": "none" if encoder == "none" else file_sha256(encoder), "cohort": file_sha256(cohort),
            "splits": file_sha256(splits), "fold": int(fold), "fraction": float(fraction), "head": str(head)}


def _resume_state(path: Path, cfg: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it may be continued, else ``None`` (and a line on stderr saying why)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated/foreign file: report it and train from scratch
        print(f"smart finetune: not resuming {path} (unreadable: {exc}): starting fresh", file=sys.stderr)
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        print(f"smart finetune: not resuming {path} (not a fine-tuning checkpoint): starting fresh", file=sys.stderr)
        return None
    saved = state.get("config") or {}
    why = []
    differing = sorted(k for k in set(saved) | set(cfg) if k not in RESUME_IGNORED and saved.get(k) != cfg.get(k))
    if differing:
        why.append("config keys differ: " + ", ".join(differing))
    differing_inputs = sorted(k for k in set(inputs) | set(state.get("inputs") or {})
                              if (state.get("inputs") or {}).get(k) != inputs.get(k))
    if differing_inputs:
        why.append("inputs differ: " + ", ".join(differing_inputs))
    if why:
        print(f"smart finetune: not resuming {path} ({'; '.join(why)}): starting fresh", file=sys.stderr)
        return None
    print(f"smart finetune: resuming {path} after epoch {int(state['epoch'])}", file=sys.stderr)
    return state


def _save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def finetune(encoder: str, cohort: str | os.PathLike, splits: str | os.PathLike, fold: int, out_dir: str | os.PathLike,
             cfg: Mapping[str, Any], head: str = "cls", fraction: float = 1.0, progress: bool = False,
             resume: bool = False) -> dict:
    """Fine-tune ``EncoderClassifier(encoder, head)`` for one fold and write ``out_dir/metrics.json``.

    ``cfg`` is the resolved downstream config (``load_downstream_config``): training reads its typed
    :class:`~smart.downstream.sections.FinetuneSection`; the dict itself is what ``metrics.json`` and the checkpoint
    record and what ``--resume`` compares, and it gives ``encoder none`` its scratch encoder. With ``resume``,
    continue ``out_dir/checkpoint_last.pt`` when its config and inputs match (module docstring).
    Raises :class:`smart.preemption.TrainingInterrupted` (exit 75) after checkpointing on SIGTERM/SIGUSR1.
    """
    from smart.data.cohort import read_cohort
    from smart.models.classifier import EncoderClassifier

    section = finetune_section(cfg)
    seed = section.seed
    data: FoldData = select_fold(read_cohort(cohort), splits, fold, fraction, seed, section.inner_val_fraction)
    generator = set_seed(seed)
    device = resolve_device(section.device)
    enc, meta = load_any_encoder(encoder, cfg)
    model = EncoderClassifier(enc, head=head, n_classes=2).to(device)
    if section.activation_checkpointing:
        set_activation_checkpointing(model.encoder)
    amp_dtype, micro = autocast_dtype(section.precision, device), section.micro_batch
    optimizer = torch.optim.AdamW(model.parameters(), lr=section.lr, weight_decay=section.weight_decay)
    train_loader = _loader(data.train, section, train=True, device=device, generator=generator)
    inner_loader = _loader(data.inner, section, train=False, device=device)
    inner_labels = data.inner["label"].astype(int).to_numpy()
    weight = class_weights(data.train["label"].to_numpy()).to(device) if section.class_balance else None

    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict] | None = None
    out_path = Path(out_dir)
    checkpoint = out_path / CHECKPOINT
    inputs = run_inputs(encoder, cohort, splits, fold, fraction, head)
    state = _resume_state(checkpoint, cfg, inputs) if resume else None
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = int(state["epoch"]), list(state["history"])
        if state.get("best_model") is not None:
            best = (float(state["best_auc"]), int(state["best_epoch"]), state["best_model"])

    def save(epoch: int) -> None:
        _save_state(checkpoint, {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                 "history": history, "config": dict(cfg), "inputs": inputs,
                                 "best_auc": None if best is None else best[0],
                                 "best_epoch": None if best is None else best[1],
                                 "best_model": None if best is None else best[2]})

    n_epochs, every, patience = section.epochs, section.checkpoint_every, section.patience
    # metrics.jsonl + tb/ beside metrics.json (TensorBoard scalars per epoch); a fresh run starts the file clean, a
    # resumed one keeps the epochs its checkpoint holds
    logger = RunLogger(out_dir)
    logger.truncate_after(start)
    try:
        with logger.progress(n_epochs, initial=start, desc=f"finetune fold {fold}", unit="epoch",
                             show=progress) as bar, StopFlag() as stop:
            for epoch in range(start + 1, n_epochs + 1):
                # Every random stream restarts from (seed, epoch): a resumed run repeats an uninterrupted one exactly.
                epoch_seed = derive_seed(seed, _PURPOSE_EPOCH, epoch)
                set_seed(epoch_seed)
                generator.manual_seed(epoch_seed)
                train_loader.dataset.set_augmentation_seed(epoch_seed)
                loss = train_epoch(model, train_loader, optimizer, device, weight, micro, amp_dtype)
                # the inner validation split only: fold k and the test set are not read before the loop ends
                inner_auc = binary_metrics(inner_labels, predict(model, inner_loader, device, amp_dtype))["auc"]
                history.append({"epoch": epoch, "train_loss": loss, "inner_val_auc": inner_auc})
                logger.log({"step": epoch, "train_loss": loss, "inner_val_auc": inner_auc})
                bar.update(1, samples=len(data.train), loss=loss, inner_val_auc=inner_auc)
                better = inner_auc is not None and (best is None or inner_auc > best[0])
                if section.selection == "best_val_auc" and better:
                    best = (inner_auc, epoch, copy.deepcopy(model.state_dict()))
                stalled = patience is not None and epoch - (best[1] if best is not None else 0) >= patience
                if stop.stopping or (epoch % every == 0 and epoch < n_epochs and not stalled):
                    save(epoch)
                if stop.stopping:
                    raise TrainingInterrupted(f"stop signal received after epoch {epoch}; wrote {checkpoint} "
                                              f"(rerun with --resume)")
                if stalled:
                    break
    finally:
        logger.close()
    selected = len(history)
    rule = "last epoch"
    if best is not None:
        model.load_state_dict(best[2])
        selected = best[1]
        rule = "highest inner_val AUC (first epoch on ties)"
    elif section.selection == "best_val_auc":
        rule = "last epoch (the inner_val AUC was never defined)"
    choices = {"epoch": {"value": selected, "rule": rule},
               "early_stopping": {"value": len(history), "stopped_early": len(history) < n_epochs, "patience": patience,
                                  "rule": "stop after `patience` epochs without a higher inner_val AUC"
                                  if patience is not None else "off (runs all epochs)"}}
    if section.save_encoder:
        from smart.models.encoder_io import export_encoder

        # the fine-tuned encoder in the shared encoder format, so `smart attention-maps` can draw Fig. 4 after FT
        export_encoder(model.encoder, Path(out_dir) / "encoder_finetuned.pt", model_config=enc.model_config,
                       method=f"{meta.get('method', 'unknown')}+finetune", step=selected)
    # the one read of fold k and the test set, with the chosen weights
    def probs(frame):
        return predict(model, _loader(frame, section, train=False, device=device), device, amp_dtype)

    record = write_metrics(out_dir, kind="finetune", data=data,
                           inner_probs=predict(model, inner_loader, device, amp_dtype),
                           val_probs=probs(data.val), test_probs=probs(data.test), cfg=cfg,
                           encoder=encoder, encoder_meta=meta, fold=fold, fraction=fraction, choices=choices,
                           extra={"head": head, "selected_epoch": selected, "history": history})
    checkpoint.unlink(missing_ok=True)  # finished: metrics.json is the result; a forced rerun trains again
    return record

