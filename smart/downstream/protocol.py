"""What fine-tuning and linear probing share (docs/evaluation.md "Fine-tuning and linear probing"): the downstream
config, the fold / fraction selection from ``splits.json``, the patient-leak check, the encoder (pretrained or random)
and the ``metrics.json`` record.

Fold protocol (docs/evaluation.md "Selection"): the training part of fold k (the folds != k) is split once more into
an *inner training* part (optionally a stratified ``fraction`` of it) and an *inner validation* split (whole patients,
stratified, seeded: :func:`smart.data.splits.grouped_holdout`). Every choice — the fine-tuning epoch, early stopping,
the probe's C — is made on the inner validation split. Fold k and the test set are predicted once, at the end, with
the chosen model, and never influence a choice: in a cross-validation-only task (the paper's treatment response)
fold k *is* the reported result, so choosing on it would bias the estimate upward.
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
from smart.data.splits import grouped_holdout
from smart.data.views import derive_seed
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
    "selection": "best_val_auc",      # or "last"; "val" = the inner validation split, never fold k or the test set
    "inner_val_fraction": 0.2,        # share of the training part held out (whole patients) to make every choice on
    "patience": None,                 # fine-tuning early stopping: stop after N epochs without a better inner-val AUC
    "num_workers": 0,                 # fine-tuning data-loader worker processes (0 = load in the training process)
    # Memory knobs of fine-tuning (issue 18; docs/evaluation.md "Fitting a GPU"). batch_size stays the effective
    # batch of one optimiser step; micro_batch_size samples go through the model at a time and their gradients are
    # accumulated (null = the whole batch at once). None of the three changes what is optimised.
    "micro_batch_size": None,
    "activation_checkpointing": False,  # recompute each Swin / ViT block in backward instead of saving activations
    "precision": "auto",              # auto = bf16 autocast on CUDA, fp32 elsewhere | bf16 | fp32
    "device": "auto",                 # auto = cuda when available
    "save_encoder": False,            # fine-tuning: also write the selected encoder (attention maps after FT, Fig. 4)
    "checkpoint_every": 10,           # fine-tuning: write checkpoint_last.pt every N epochs (resume with --resume)
    "probe_C": [0.01, 0.1, 1.0, 10.0],  # linear probe: C chosen on the inner validation split
    "probe_max_iter": 5000,
    "feature_batch_size": 8,
    "scratch_method": "smart",        # encoder "none": a random-init encoder of this method's architecture ...
    "scratch_preset": None,           # ... at this pretraining preset (tiny | paper | null = defaults) ...
    "scratch_model": {},              # ... with these model.* overrides
}
SELECTIONS = ("best_val_auc", "last")
# AP50 / AR50 call a sample positive at P >= 0.5 (paper Sec. IV-D): a fixed threshold, chosen on no data.
THRESHOLD_CHOICE = {"value": 0.5, "rule": "fixed by the definition of AP50/AR50 (paper Sec. IV-D); not selected"}
_INNER_SPLIT_STREAM = 1907  # seeds the inner split's patient order apart from the fraction draw of the same seed
PRECISIONS = ("auto", "bf16", "fp32")
FRACTIONS_HINT = "0 < fraction <= 1 (the paper uses 0.25, 0.5, 1.0)"


# Type tags of the keys above (smart.overlay); a key without one takes any value and is checked in _validate.
TYPES: dict[str, str] = {
    "epochs": "int", "batch_size": "int", "lr": "float", "weight_decay": "float", "seed": "int", "crop_size": "ints:3",
    "augment": "bool", "class_balance": "bool", "selection": "str:" + "|".join(SELECTIONS), "num_workers": "int",
    "device": "str", "save_encoder": "bool", "checkpoint_every": "int", "probe_C": "floats:0", "probe_max_iter": "int",
    "feature_batch_size": "int", "scratch_method": "str", "scratch_preset": "?str", "scratch_model": "?dict",
    "inner_val_fraction": "float", "patience": "?int", "micro_batch_size": "?int", "activation_checkpointing": "bool",
    "precision": "str:" + "|".join(PRECISIONS),
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
    if not 0.0 < cfg["inner_val_fraction"] < 1.0:
        raise key_error("downstream", "inner_val_fraction", cfg["inner_val_fraction"], "a number in (0, 1)")
    patience = cfg["patience"]
    if patience is not None and patience < 1:
        raise key_error("downstream", "patience", patience, "null or an integer >= 1")
    if patience is not None and cfg["selection"] != "best_val_auc":
        raise ValueError(f"downstream config 'patience' ({patience}) needs selection 'best_val_auc' (early stopping "
                         f"watches the inner-validation AUC), got selection {cfg['selection']!r}")
    if cfg["num_workers"] < 0:
        raise key_error("downstream", "num_workers", cfg["num_workers"], "an integer >= 0")
    micro = cfg["micro_batch_size"]
    if micro is not None:
        if micro < 1:
            raise key_error("downstream", "micro_batch_size", micro, "null or an integer >= 1")
        if cfg["batch_size"] % micro:
            raise ValueError(f"downstream config 'micro_batch_size' {micro} does not divide 'batch_size' "
                             f"{cfg['batch_size']}: the effective batch must be a whole number of micro-batches")
    if any(c <= 0 for c in cfg["probe_C"]):
        raise key_error("downstream", "probe_C", cfg["probe_C"], "a non-empty list of positive numbers")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device``: bf16 for ``"bf16"`` and for ``"auto"`` on CUDA, ``None``
    (plain fp32) for ``"fp32"`` and for ``"auto"`` elsewhere. bf16 rather than fp16: same exponent range as fp32, so no
    loss scaling (pretraining makes the same choice, ``smart.train.pretrain``). ``ValueError`` for another name."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    return torch.bfloat16


@dataclass
class FoldData:
    """One fold's parts: ``train`` (inner training, after ``fraction``), ``inner`` (inner validation: every choice),
    ``val`` (fold k) and ``test`` (the test set; empty in a cross-validation-only task). ``selected_on`` describes the
    inner validation split for ``metrics.json``."""

    train: pd.DataFrame
    inner: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    selected_on: dict


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


def _label_counts(frame: pd.DataFrame, group_column: str) -> str:
    by_label = frame["label"].astype(int).value_counts().sort_index()
    return (f"{len(frame)} samples / {frame[group_column].nunique()} patients "
            f"({', '.join(f'label {k}: {v}' for k, v in by_label.items()) or 'no labels'})")


def inner_split(train: pd.DataFrame, fold: int, inner_val_fraction: float, seed: int,
                group_column: str = "patient_id") -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Split fold ``fold``'s training part into ``(inner_train, inner_val, selected_on)``.

    ``inner_val`` holds whole patients, about ``inner_val_fraction`` of the samples with the training part's label mix
    and at least one patient of each label (:func:`smart.data.splits.grouped_holdout`); the patient order is drawn
    from ``seed``. Raises ``ValueError`` naming the fold and the counts when either part would lack a class (an AUC,
    and so every choice, needs both).
    """
    held = grouped_holdout(train, inner_val_fraction, derive_seed(_INNER_SPLIT_STREAM, seed), group_column)
    inner_train, inner_val = train[~held].reset_index(drop=True), train[held].reset_index(drop=True)
    for name, part in (("inner validation", inner_val), ("inner training", inner_train)):
        if part["label"].astype(int).nunique() < 2:
            raise ValueError(f"fold {fold}: the {name} part cannot hold both classes: training part "
                             f"{_label_counts(train, group_column)} -> inner validation "
                             f"{_label_counts(inner_val, group_column)}, inner training "
                             f"{_label_counts(inner_train, group_column)} (inner_val_fraction {inner_val_fraction}); "
                             f"every choice needs an AUC on both classes: give the training part at least 2 patients "
                             f"of each label or change inner_val_fraction")
    labels = inner_val["label"].astype(int)
    record = {"split": "inner_val", "of": f"training part of fold {fold} (folds != {fold})",
              "inner_val_fraction": float(inner_val_fraction), "seed": int(seed),
              "n": int(len(inner_val)), "n_pos": int(labels.sum()), "patients": int(inner_val[group_column].nunique()),
              "sample_ids": [str(s) for s in inner_val["sample_id"]]}
    return inner_train, inner_val, record


def select_fold(frame: pd.DataFrame, splits_path: str | os.PathLike, fold: int, fraction: float = 1.0,
                seed: int = 0, inner_val_fraction: float = DEFAULTS["inner_val_fraction"]) -> FoldData:
    """Train = folds != ``fold`` minus the inner validation split (:func:`inner_split`), then a stratified
    ``fraction``; inner = the inner validation split; val = fold ``fold``; test = ``splits["test"]``.

    The inner split is drawn from the whole training part before ``fraction``, so every fraction of one fold and seed
    chooses on the same samples. Raises ``ValueError`` on leaking splits or an inner split without both classes.
    """
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
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must satisfy {FRACTIONS_HINT}, got {fraction}")
    ids = set(frame["sample_id"].astype(str))
    listed = [str(s) for f in folds for s in f] + [str(s) for s in splits["test"]]
    missing = sorted(set(listed) - ids)
    if missing:
        raise ValueError(f"{splits_path}: {len(missing)} sample_id(s) not in the cohort, e.g. {missing[:3]}")
    group_column = splits.get("group_column", "patient_id")
    by_id = frame.assign(sample_id=frame["sample_id"].astype(str)).set_index("sample_id", drop=False)
    train_ids = [str(s) for k, f in enumerate(folds) if k != fold for s in f]
    train = by_id.loc[train_ids].reset_index(drop=True)
    val = by_id.loc[[str(s) for s in folds[fold]]].reset_index(drop=True)
    test = by_id.loc[[str(s) for s in splits["test"]]].reset_index(drop=True)
    check_disjoint({"train": train, "val": val, "test": test}, group_column)
    inner_train, inner_val, selected_on = inner_split(train, fold, inner_val_fraction, seed, group_column)
    return FoldData(train=stratified_fraction(inner_train, fraction, seed).reset_index(drop=True), inner=inner_val,
                    val=val, test=test, selected_on=selected_on)


def scratch_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved pretraining config whose model ``encoder none`` builds: ``scratch_method`` at
    ``scratch_preset`` plus the ``scratch_model`` overrides (the workflow resolves it before any job)."""
    from smart.config import load_config

    overrides = {f"model.{k}": v for k, v in (cfg.get("scratch_model") or {}).items()}
    return load_config(cfg["scratch_method"], cfg["scratch_preset"], None, overrides)


def build_scratch_encoder(cfg: Mapping[str, Any]) -> tuple[torch.nn.Module, dict]:
    """The random-init encoder of ``encoder none`` (fixed seed): the model of :func:`scratch_config`."""
    from smart.models.factory import build_encoder

    model_cfg = copy.deepcopy(dict(scratch_config(cfg)["model"]))
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


def write_metrics(out_dir: str | os.PathLike, *, kind: str, data: FoldData, inner_probs, val_probs, test_probs,
                  cfg: Mapping, encoder: str, encoder_meta: Mapping, fold: int, fraction: float,
                  choices: Mapping[str, Mapping], extra: Mapping | None = None) -> dict:
    """``out_dir/metrics.json`` (atomic): inner-validation / fold-k / test metrics, per-sample probabilities, the
    sample ids used for training, what every choice was made on (``selected_on``: the inner split, and per choice
    its value and rule; the AP50/AR50 threshold is fixed), which block is the reported result (``reported``: "test",
    or "val" = fold k in a cross-validation-only task), config and provenance."""
    inner, inner_pred = split_record(data.inner, inner_probs)
    val, val_pred = split_record(data.val, val_probs)
    test, test_pred = split_record(data.test, test_probs)
    record = {
        "kind": kind, "inner_val": inner, "val": val, "test": test, "reported": "test" if len(data.test) else "val",
        "selected_on": {**data.selected_on, "choices": {**{k: dict(v) for k, v in choices.items()},
                                                        "threshold": dict(THRESHOLD_CHOICE)}},
        "fold": int(fold), "fraction": float(fraction),
        "encoder": str(encoder), "encoder_method": encoder_meta.get("method"),
        "n_train": int(len(data.train)), "n_train_pos": int(data.train["label"].astype(int).sum()),
        "train_ids": [str(s) for s in data.train["sample_id"]],
        "predictions": {"inner_val": inner_pred, "val": val_pred, "test": test_pred},
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

