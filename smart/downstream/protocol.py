"""What fine-tuning and linear probing share (docs/evaluation.md "Fine-tuning and linear probing"): the downstream
config, the fold / fraction selection from ``splits.json``, the patient-leak check, the encoder (pretrained or random)
and the ``metrics.json`` record.

Fold protocol: train on the folds != k (optionally a stratified fraction of it), validate on fold k (model / C
selection), report on the held-out test set; the test set never influences any choice.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from smart.atomic import write_json
from smart.downstream.metrics import binary_metrics
from smart.overlay import OPTIM_ALIASES, Layer, apply_layers, key_error, parse_set, read_yaml
from smart.provenance import provenance
from smart.seeding import seed_everything

# Paper Sec. IV-C (fine-tuning: batch 40, lr 2e-4, 1,000 epochs on LIDC / 2,000 on immunotherapy); the rest are ours.
DEFAULTS: dict[str, Any] = {
    "epochs": 1000,
    "batch_size": 40,
    "lr": 2e-4,
    "weight_decay": 0.05,
    "seed": 0,
    "crop_size": [64, 64, 64],
    "augment": True,
    # LIDC is ~20 % malignant (docs/evaluation.md): inverse-frequency class weights in the fine-tuning loss and the
    # probe, so the 0.5 threshold behind AP50/AR50 is not swamped by the majority class. false = plain loss.
    "class_balance": True,
    "selection": "best_val_auc",      # or "last"
    "num_workers": 0,
    "device": "auto",                 # auto = cuda when available
    "save_encoder": False,            # fine-tuning: also write the selected encoder (attention maps after FT, Fig. 4)
    "checkpoint_every": 10,           # fine-tuning: write checkpoint_last.pt every N epochs (resume with --resume)
    "probe_C": [0.01, 0.1, 1.0, 10.0],  # linear probe: C chosen on the validation fold
    "probe_max_iter": 5000,
    "feature_batch_size": 8,
    "scratch_method": "smart",        # encoder "none": a random-init encoder of this method's architecture ...
    "scratch_preset": None,           # ... at this pretraining preset (tiny | paper | null = defaults) ...
    "scratch_model": {},              # ... with these model.* overrides
}
SELECTIONS = ("best_val_auc", "last")
FRACTIONS_HINT = "0 < fraction <= 1 (the paper uses 0.25, 0.5, 1.0)"


# Type tags of the keys above (smart.overlay); a key without one takes any value and is checked in _validate.
TYPES: dict[str, str] = {
    "epochs": "int", "batch_size": "int", "lr": "float", "weight_decay": "float", "seed": "int", "crop_size": "ints:3",
    "augment": "bool", "class_balance": "bool", "selection": "str:" + "|".join(SELECTIONS), "num_workers": "int",
    "device": "str", "save_encoder": "bool", "checkpoint_every": "int", "probe_C": "floats:0", "probe_max_iter": "int",
    "feature_batch_size": "int", "scratch_method": "str", "scratch_preset": "?str", "scratch_model": "?dict",
}


def load_downstream_config(config_yaml: str | os.PathLike | None = None, overrides: Sequence[str] | None = None) -> dict:
    """DEFAULTS <- YAML (top-level keys, or under ``finetune:``) <- ``--set key=value`` (``scratch_model.x=v`` nests),
    through the one layering loop (``smart.overlay.apply_layers``); ``ValueError`` naming key, value and what is
    allowed."""
    layers: list[Layer] = []
    if config_yaml is not None:
        data = read_yaml(config_yaml)
        layers.append((f"config file {config_yaml}", data.get("finetune", data)))
    if overrides:
        layers.append(("--set", parse_set(list(overrides))))
    cfg = apply_layers(DEFAULTS, layers, {key: TYPES.get(key, "any") for key in DEFAULTS}, what="downstream",
                       aliases=OPTIM_ALIASES)
    _validate(cfg)
    return cfg


def _validate(cfg: dict) -> None:
    for key in ("epochs", "batch_size", "feature_batch_size", "probe_max_iter", "checkpoint_every"):
        if cfg[key] < 1:
            raise key_error("downstream", key, cfg[key], "an integer >= 1")
    for key in ("lr",):
        if not cfg[key] > 0:
            raise key_error("downstream", key, cfg[key], "a number > 0")
    if any(c < 1 for c in cfg["crop_size"]):
        raise key_error("downstream", "crop_size", cfg["crop_size"], "3 positive integers")
    if any(c <= 0 for c in cfg["probe_C"]):
        raise key_error("downstream", "probe_C", cfg["probe_C"], "a non-empty list of positive numbers")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class FoldData:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame


def stratified_fraction(frame: pd.DataFrame, fraction: float, seed: int, label_column: str = "label") -> pd.DataFrame:
    """A ``fraction`` of ``frame`` drawn per label (``round(fraction·n_c)``, at least 1 per present label), with a
    fixed seed; rows keep their original order."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must satisfy {FRACTIONS_HINT}, got {fraction}")
    if fraction == 1.0:
        return frame
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for _, group in frame.groupby(label_column, sort=True):
        n = max(1, int(round(fraction * len(group))))
        keep += rng.choice(group.index.to_numpy(), size=n, replace=False).tolist()
    return frame.loc[sorted(keep)]


def check_disjoint(parts: Mapping[str, pd.DataFrame], group_column: str = "patient_id") -> None:
    """No sample and no patient may appear in two of ``parts`` (train/val/test)."""
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for column in ("sample_id", group_column):
                if column not in parts[a] or column not in parts[b]:
                    continue
                shared = set(parts[a][column]) & set(parts[b][column])
                if shared:
                    raise ValueError(f"{column} shared between {a} and {b}: {sorted(map(str, shared))[:5]} "
                                     f"({len(shared)} in all) — splits leak")


def select_fold(frame: pd.DataFrame, splits_path: str | os.PathLike, fold: int, fraction: float = 1.0,
                seed: int = 0) -> FoldData:
    """Train = folds != ``fold`` (then a stratified ``fraction``), val = fold ``fold``, test = ``splits["test"]``."""
    splits_path = Path(splits_path)
    if not splits_path.is_file():
        raise ValueError(f"splits file {splits_path} does not exist")
    try:
        splits = json.loads(splits_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:  # a damaged file: name it (smart.inputs)
        from smart.inputs import InputFileError

        raise InputFileError(splits_path, f"not a readable splits JSON ({err})") from None
    for key in ("test", "folds"):
        if key not in splits:
            raise ValueError(f"{splits_path}: missing key {key!r}")
    folds = splits["folds"]
    if not 0 <= fold < len(folds):
        raise ValueError(f"fold {fold} out of range: {splits_path} has {len(folds)} folds (0..{len(folds) - 1})")
    ids = set(frame["sample_id"].astype(str))
    listed = [str(s) for f in folds for s in f] + [str(s) for s in splits["test"]]
    missing = sorted(set(listed) - ids)
    if missing:
        raise ValueError(f"{splits_path}: {len(missing)} sample_id(s) not in the cohort, e.g. {missing[:3]}")
    by_id = frame.assign(sample_id=frame["sample_id"].astype(str)).set_index("sample_id", drop=False)
    train_ids = [str(s) for k, f in enumerate(folds) if k != fold for s in f]
    data = FoldData(train=by_id.loc[train_ids].reset_index(drop=True),
                    val=by_id.loc[[str(s) for s in folds[fold]]].reset_index(drop=True),
                    test=by_id.loc[[str(s) for s in splits["test"]]].reset_index(drop=True))
    check_disjoint({"train": data.train, "val": data.val, "test": data.test},
                   splits.get("group_column", "patient_id"))
    data.train = stratified_fraction(data.train, fraction, seed).reset_index(drop=True)
    return data


def build_scratch_encoder(cfg: Mapping[str, Any]) -> tuple[torch.nn.Module, dict]:
    """The random-init encoder of ``encoder none`` (fixed seed): architecture of ``scratch_method`` at
    ``scratch_preset`` plus ``scratch_model`` overrides."""
    from smart.config import load_config
    from smart.models.factory import build_encoder

    overrides = {f"model.{k}": v for k, v in (cfg.get("scratch_model") or {}).items()}
    model_cfg = copy.deepcopy(dict(load_config(cfg["scratch_method"], cfg["scratch_preset"], None, overrides)["model"]))
    torch.manual_seed(int(cfg["seed"]))
    return build_encoder(model_cfg), {"method": "none", "model_config": model_cfg}


def load_any_encoder(encoder: str, cfg: Mapping[str, Any]) -> tuple[torch.nn.Module, dict]:
    """``encoder`` = path to ``encoder.pt`` or ``"none"`` (random init). Returns ``(encoder, meta)``."""
    if encoder == "none":
        return build_scratch_encoder(cfg)
    from smart.models.encoder_io import load_encoder

    path = Path(encoder)
    if not path.is_file():
        raise ValueError(f"encoder file {path} does not exist (pass 'none' for a randomly initialised encoder)")
    enc, meta = load_encoder(path)
    return enc, {k: v for k, v in dict(meta).items() if isinstance(v, (str, int, float, bool, dict, list, type(None)))}


def split_record(frame: pd.DataFrame, probs: Sequence[float]) -> tuple[dict, dict]:
    """``(binary_metrics, {sample_id: probability})`` of one split."""
    labels = frame["label"].astype(int).to_numpy()
    probs = np.asarray(probs, dtype=np.float64)
    return binary_metrics(labels, probs), {str(s): float(p) for s, p in zip(frame["sample_id"], probs)}


def write_metrics(out_dir: str | os.PathLike, *, kind: str, data: FoldData, val_probs, test_probs, cfg: Mapping,
                  encoder: str, encoder_meta: Mapping, fold: int, fraction: float, extra: Mapping | None = None) -> dict:
    """``out_dir/metrics.json`` (atomic): val/test metrics, per-sample test/val probabilities, the sample ids used for
    training, config and provenance."""
    val, val_pred = split_record(data.val, val_probs)
    test, test_pred = split_record(data.test, test_probs)
    record = {
        "kind": kind, "val": val, "test": test, "fold": int(fold), "fraction": float(fraction),
        "encoder": str(encoder), "encoder_method": encoder_meta.get("method"),
        "n_train": int(len(data.train)), "n_train_pos": int(data.train["label"].astype(int).sum()),
        "train_ids": [str(s) for s in data.train["sample_id"]],
        "predictions": {"val": val_pred, "test": test_pred},
        **(dict(extra) if extra else {}),
        "config": dict(cfg),
        "provenance": provenance({**dict(cfg), "encoder": str(encoder), "fold": fold, "fraction": fraction, "kind": kind},
                                 seed=int(cfg["seed"])),
    }
    write_json(Path(out_dir) / "metrics.json", record)
    return record


def set_seed(seed: int) -> torch.Generator:
    """Seed the global generators (:func:`smart.seeding.seed_everything`); return a generator for data order."""
    seed_everything(seed)
    return torch.Generator().manual_seed(seed)

