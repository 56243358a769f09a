"""Supervised fine-tuning of a (pre)trained encoder on a binary cohort (paper Sec. IV-C/IV-D, Tables II-IV, Fig. 6).

One run = one fold k: train on the folds != k (a stratified ``fraction`` of them for the limited-data study), select
the model on fold k, report on the held-out test set (``smart.downstream.protocol``). Optimiser AdamW with a constant
learning rate (paper: batch 40, lr 2e-4, 1,000 epochs on LIDC, 2,000 on immunotherapy), cross-entropy on 2 logits,
P(label 1) = softmax[:, 1].

Model selection (``selection``): ``best_val_auc`` keeps the weights of the epoch with the highest validation AUC
(first such epoch on ties; when the validation fold holds one class, AUC is undefined and the last epoch is used);
``last`` keeps the last epoch. The test set is evaluated once, with the selected weights.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from smart.downstream.metrics import binary_metrics
from smart.downstream.protocol import (FoldData, load_any_encoder, resolve_device, select_fold, set_seed,
                                       write_metrics)
from smart.run_logging import RunLogger


def _loader(frame: pd.DataFrame, cfg: Mapping[str, Any], train: bool, generator: torch.Generator | None = None) -> DataLoader:
    from smart.data.cohort import CohortDataset

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


def finetune(encoder: str, cohort: str | os.PathLike, splits: str | os.PathLike, fold: int, out_dir: str | os.PathLike,
             cfg: Mapping[str, Any], head: str = "cls", fraction: float = 1.0, progress: bool = False) -> dict:
    """Fine-tune ``EncoderClassifier(encoder, head)`` for one fold and write ``out_dir/metrics.json``."""
    from smart.data.cohort import read_cohort
    from smart.models.classifier import EncoderClassifier

    seed = int(cfg["seed"])
    data: FoldData = select_fold(read_cohort(cohort), splits, fold, fraction, seed)
    generator = set_seed(seed)
    device = resolve_device(str(cfg["device"]))
    enc, meta = load_any_encoder(encoder, cfg)
    model = EncoderClassifier(enc, head=head, n_classes=2).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
    train_loader = _loader(data.train, cfg, train=True, generator=generator)
    val_loader = _loader(data.val, cfg, train=False)
    val_labels = data.val["label"].astype(int).to_numpy()
    weight = class_weights(data.train["label"].to_numpy()).to(device) if cfg["class_balance"] else None

    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict] | None = None
    # metrics.jsonl + tb/ beside metrics.json (TensorBoard scalars per epoch); a rerun in the same folder starts clean
    logger = RunLogger(out_dir)
    logger.truncate_after(0)
    try:
        with logger.progress(int(cfg["epochs"]), desc=f"finetune fold {fold}", unit="epoch", show=progress) as bar:
            for epoch in range(1, int(cfg["epochs"]) + 1):
                loss = train_epoch(model, train_loader, optimizer, device, weight)
                val_auc = binary_metrics(val_labels, predict(model, val_loader, device))["auc"]
                history.append({"epoch": epoch, "train_loss": loss, "val_auc": val_auc})
                logger.log({"step": epoch, "train_loss": loss, "val_auc": val_auc})
                bar.update(1, samples=len(data.train), loss=loss, val_auc=val_auc)
                if cfg["selection"] == "best_val_auc" and val_auc is not None and (best is None or val_auc > best[0]):
                    best = (val_auc, epoch, copy.deepcopy(model.state_dict()))
    finally:
        logger.close()
    selected = len(history)
    if best is not None:
        model.load_state_dict(best[2])
        selected = best[1]
    if cfg.get("save_encoder"):
        from smart.models.encoder_io import export_encoder

        # the fine-tuned encoder in the shared encoder format, so `smart attention-maps` can draw Fig. 4 after FT
        export_encoder(model.encoder, Path(out_dir) / "encoder_finetuned.pt", model_config=enc.model_config,
                       method=f"{meta.get('method', 'unknown')}+finetune", step=selected)
    val_probs = predict(model, val_loader, device)
    test_probs = predict(model, _loader(data.test, cfg, train=False), device)
    return write_metrics(out_dir, kind="finetune", data=data, val_probs=val_probs, test_probs=test_probs, cfg=cfg,
                         encoder=encoder, encoder_meta=meta, fold=fold, fraction=fraction,
                         extra={"head": head, "selected_epoch": selected, "history": history})

