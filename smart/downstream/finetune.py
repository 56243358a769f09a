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
from smart.downstream.protocol import (FoldData, load_any_encoder, resolve_device, select_fold, set_seed,
                                       write_metrics)
from smart.preemption import StopFlag, TrainingInterrupted
from smart.provenance import file_sha256
from smart.run_logging import RunLogger

CHECKPOINT = "checkpoint_last.pt"
FORMAT = "smart-finetune-checkpoint/1"
# Keys that do not change what is trained: the epoch budget (raise it to extend a run) and bookkeeping.
RESUME_IGNORED = frozenset({"epochs", "num_workers", "checkpoint_every"})
_PURPOSE_EPOCH = 41


def _loader(frame: pd.DataFrame, cfg: Mapping[str, Any], train: bool, generator: torch.Generator | None = None) -> DataLoader:
    from smart.data.cohort_dataset import CohortDataset

    ds = CohortDataset(frame, crop_size=tuple(cfg["crop_size"]), augment=bool(cfg["augment"]) and train,
                       seed=int(cfg["seed"]))
    return DataLoader(ds, batch_size=int(cfg["batch_size"]), shuffle=train, generator=generator,
                      num_workers=int(cfg["num_workers"]), drop_last=False)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device: torch.device) -> np.ndarray:
    """P(label 1) for every sample of ``loader`` in order (eval mode)."""
    model.eval()
    probs = [torch.softmax(model(x.to(device).float()), dim=1)[:, 1].float().cpu() for x, _ in loader]
    return torch.cat(probs).numpy() if probs else np.zeros(0)


def class_weights(labels: np.ndarray, n_classes: int = 2) -> torch.Tensor:
    """Inverse-frequency weights ``n / (k · n_c)`` (scikit-learn's "balanced"); a missing class gets weight 0."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=n_classes).astype(float)
    weights = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, device: torch.device,
                weight: torch.Tensor | None = None) -> float:
    model.train()
    total, n = 0.0, 0
    for x, y in loader:
        x, y = x.to(device).float(), torch.as_tensor(y, device=device).long()
        loss = F.cross_entropy(model(x), y, weight=weight)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite fine-tuning loss {loss.item()} (lower lr?)")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(y)
        n += len(y)
    return total / max(n, 1)



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

    With ``resume``, continue ``out_dir/checkpoint_last.pt`` when its config and inputs match (module docstring).
    Raises :class:`smart.preemption.TrainingInterrupted` (exit 75) after checkpointing on SIGTERM/SIGUSR1.
    """
    from smart.data.cohort import read_cohort
    from smart.models.classifier import EncoderClassifier

    seed = int(cfg["seed"])
    data: FoldData = select_fold(read_cohort(cohort), splits, fold, fraction, seed, float(cfg["inner_val_fraction"]))
    generator = set_seed(seed)
    device = resolve_device(str(cfg["device"]))
    enc, meta = load_any_encoder(encoder, cfg)
    model = EncoderClassifier(enc, head=head, n_classes=2).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
    train_loader = _loader(data.train, cfg, train=True, generator=generator)
    inner_loader = _loader(data.inner, cfg, train=False)
    inner_labels = data.inner["label"].astype(int).to_numpy()
    weight = class_weights(data.train["label"].to_numpy()).to(device) if cfg["class_balance"] else None

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

    n_epochs, every = int(cfg["epochs"]), int(cfg["checkpoint_every"])
    patience = cfg.get("patience")
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
                loss = train_epoch(model, train_loader, optimizer, device, weight)
                # the inner validation split only: fold k and the test set are not read before the loop ends
                inner_auc = binary_metrics(inner_labels, predict(model, inner_loader, device))["auc"]
                history.append({"epoch": epoch, "train_loss": loss, "inner_val_auc": inner_auc})
                logger.log({"step": epoch, "train_loss": loss, "inner_val_auc": inner_auc})
                bar.update(1, samples=len(data.train), loss=loss, inner_val_auc=inner_auc)
                better = inner_auc is not None and (best is None or inner_auc > best[0])
                if cfg["selection"] == "best_val_auc" and better:
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
    elif cfg["selection"] == "best_val_auc":
        rule = "last epoch (the inner_val AUC was never defined)"
    choices = {"epoch": {"value": selected, "rule": rule},
               "early_stopping": {"value": len(history), "stopped_early": len(history) < n_epochs, "patience": patience,
                                  "rule": "stop after `patience` epochs without a higher inner_val AUC"
                                  if patience is not None else "off (runs all epochs)"}}
    if cfg.get("save_encoder"):
        from smart.models.encoder_io import export_encoder

        # the fine-tuned encoder in the shared encoder format, so `smart attention-maps` can draw Fig. 4 after FT
        export_encoder(model.encoder, Path(out_dir) / "encoder_finetuned.pt", model_config=enc.model_config,
                       method=f"{meta.get('method', 'unknown')}+finetune", step=selected)
    # the one read of fold k and the test set, with the chosen weights
    record = write_metrics(out_dir, kind="finetune", data=data, inner_probs=predict(model, inner_loader, device),
                           val_probs=predict(model, _loader(data.val, cfg, train=False), device),
                           test_probs=predict(model, _loader(data.test, cfg, train=False), device), cfg=cfg,
                           encoder=encoder, encoder_meta=meta, fold=fold, fraction=fraction, choices=choices,
                           extra={"head": head, "selected_epoch": selected, "history": history})
    checkpoint.unlink(missing_ok=True)  # finished: metrics.json is the result; a forced rerun trains again
    return record

