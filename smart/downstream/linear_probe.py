"""Linear probing of frozen encoder features (paper Tables II/III "Linear Probing").

Features: [CLS] when the encoder has one (SMART SA [CLS], ViT [CLS]), else the stage-4 average pool
(``smart.downstream.features``), extracted without augmentation. Classifier: ``StandardScaler`` + L2 logistic regression
(lbfgs) fitted on the inner training part; ``C`` is chosen from ``probe_C`` by the AUC on the inner validation split
of the fold's training part (ties -> the smaller C, i.e. stronger regularisation; if that AUC is undefined, C = 1) —
never by fold k or the test set, which are predicted once, at the end (docs/evaluation.md "Selection").
``encoder none`` probes a randomly initialised encoder — the baseline the pretrained features must beat.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from smart.downstream.features import extract_features, feature_kind
from smart.downstream.metrics import binary_metrics
from smart.downstream.protocol import load_any_encoder, resolve_device, select_fold, set_seed, write_metrics
from smart.downstream.sections import probe_section

DEFAULT_C = 1.0


def _probe(C: float, seed: int, max_iter: int, balanced: bool = True):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, random_state=seed,
                                                              class_weight="balanced" if balanced else None))


def fit_probe(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, Cs, seed: int = 0,
              max_iter: int = 5000, balanced: bool = True) -> tuple[Any, float, list[dict]]:
    """Fit one probe per C on train, pick C by the AUC on ``val_x``/``val_y`` (the inner validation split);
    returns ``(probe, C, [{C, inner_val_auc}])``."""
    if len(np.unique(train_y)) < 2:
        raise ValueError(f"the training part holds one class only ({np.unique(train_y).tolist()}); cannot fit a probe")
    scores, fitted = [], {}
    for C in sorted(float(c) for c in Cs):
        fitted[C] = _probe(C, seed, max_iter, balanced).fit(train_x, train_y)
        auc = binary_metrics(val_y, fitted[C].predict_proba(val_x)[:, 1])["auc"]
        scores.append({"C": C, "inner_val_auc": auc})
    valid = [s for s in scores if s["inner_val_auc"] is not None]
    if valid:
        chosen = max(valid, key=lambda s: (s["inner_val_auc"], -s["C"]))["C"]
    else:
        chosen = DEFAULT_C
        fitted.setdefault(chosen, _probe(chosen, seed, max_iter, balanced).fit(train_x, train_y))
    return fitted[chosen], chosen, scores


def linear_probe(encoder: str, cohort: str | os.PathLike, splits: str | os.PathLike, fold: int,
                 out_dir: str | os.PathLike, cfg: Mapping[str, Any], fraction: float = 1.0) -> dict:
    """Probe ``encoder`` (path or ``"none"``) on one fold and write ``out_dir/metrics.json``.

    ``cfg`` is the resolved downstream config: the probe reads its typed
    :class:`~smart.downstream.sections.ProbeSection`; the dict is what ``metrics.json`` records and gives
    ``encoder none`` its scratch encoder."""
    from smart.data.cohort import read_cohort
    from smart.data.cohort_dataset import CohortDataset

    section = probe_section(cfg)
    seed = section.seed
    data = select_fold(read_cohort(cohort), splits, fold, fraction, seed, section.inner_val_fraction)
    set_seed(seed)
    enc, meta = load_any_encoder(encoder, cfg)
    kind = feature_kind(enc)
    device = resolve_device(section.device)

    def feats(frame):
        ds = CohortDataset(frame, crop_size=section.crop_size, augment=False)
        return extract_features(enc, ds, kind=kind, batch_size=section.feature_batch_size, device=device)

    # a cross-validation-only task (splits test_size 0, the paper's treatment response) has an empty test part
    xs = {name: feats(getattr(data, name)) for name in ("train", "inner", "val", "test") if len(getattr(data, name))}
    ys = {name: getattr(data, name)["label"].astype(int).to_numpy() for name in ("train", "inner")}
    probe, C, scores = fit_probe(xs["train"], ys["train"], xs["inner"], ys["inner"], section.probe_C, seed,
                                 section.probe_max_iter, section.class_balance)
    defined = any(s["inner_val_auc"] is not None for s in scores)
    rule = ("highest inner_val AUC over probe_C (smaller C on ties)" if defined
            else f"default C = {DEFAULT_C} (the inner_val AUC was never defined)")

    def probs(name):  # the one read of fold k and the test set, with the chosen C
        return probe.predict_proba(xs[name])[:, 1] if name in xs else np.zeros(0)

    return write_metrics(out_dir, kind="linear_probe", data=data, inner_probs=probs("inner"), val_probs=probs("val"),
                         test_probs=probs("test"), cfg=cfg, encoder=encoder, encoder_meta=meta, fold=fold,
                         fraction=fraction, choices={"C": {"value": C, "rule": rule}},
                         extra={"feature": kind, "feature_dim": int(xs["train"].shape[1]), "C": C, "C_search": scores})
