"""The paper's Tables I-VI (and Fig. 6) assembled from whatever variants ran (docs/evaluation.md "Tables").

Inputs are the workflow's result files (docs/ARCHITECTURE.md "Result paths") and ``variants.json``
(``{name: {"method", "set", "label", "tables": ["I", ...]}}``). A variant appears in a table when the table's numeral
is in its ``tables`` list. What a variant *is* (noisy teacher on/off, SA stage, losses, backbone) is read from the
resolved pretraining config ``pretrain/{variant}/config.json``, never inferred from its name.

Every cell is ``mean ± std`` over the folds found (sample std); AP50/AR50 are printed in % like the paper. Each row
lists the files it was computed from in a ``sources`` column, and ``sources.json`` repeats them per table.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from smart.atomic import write_csv, write_json, write_text
from smart.downstream.metrics import format_mean_std, mean_std
from smart.eval.paper_values import NOT_REPORTED, beside_paper, load_paper_values, paper_notes, split_paper_columns

TASKS = ("lidc", "response")
HEAD_PREFERENCE = ("cls", "pooled", "random_sa")   # the paper's default fine-tuning head first
FULL = 1.0
YES, NO, UNKNOWN = "✓", "×", "—"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def cfg_get(cfg: dict | None, dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _fraction_of(dirname: str) -> float | None:
    try:
        return float(dirname)
    except ValueError:
        return None


@dataclass
class Cell:
    """Per-fold values of one metric plus the files they came from."""

    values: list[float | None] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def text(self, digits: int = 3, scale: float = 1.0) -> str:
        return format_mean_std(self.values, digits=digits, scale=scale)

    @property
    def mean(self) -> float:
        return mean_std(self.values)[0]


class Results:
    """Read access to a results folder (the workflow's ``results/``)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"results folder {self.root} does not exist")

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)

    def pretrain_config(self, variant: str) -> dict | None:
        path = self.root / "pretrain" / variant / "config.json"
        return _read_json(path) if path.is_file() else None

    def _fold_files(self, folder: Path) -> list[Path]:
        return sorted(folder.glob("fold_*/metrics.json"), key=lambda p: p.parent.name)

    def _fraction_dirs(self, base: Path) -> dict[float, Path]:
        out = {}
        if base.is_dir():
            for d in base.iterdir():
                frac = _fraction_of(d.name)
                if d.is_dir() and frac is not None:
                    out[frac] = d
        return out

    def probe_dirs(self, task: str, variant: str) -> dict[float, Path]:
        return self._fraction_dirs(self.root / "probe" / task / variant)

    def finetune_head(self, task: str, variant: str) -> str | None:
        for head in HEAD_PREFERENCE:
            if (self.root / "finetune" / task / f"{variant}__{head}").is_dir():
                return head
        return None

    def finetune_dirs(self, task: str, variant: str, head: str | None = None) -> dict[float, Path]:
        head = head or self.finetune_head(task, variant)
        if head is None:
            return {}
        return self._fraction_dirs(self.root / "finetune" / task / f"{variant}__{head}")

    def fold_metric(self, folder: Path | None, key: str, split: str = "test") -> Cell:
        cell = Cell()
        if folder is None:
            return cell
        for path in self._fold_files(folder):
            record = _read_json(path)
            block = record.get(split)
            if split == "test" and isinstance(block, dict) and block.get("n") == 0:
                # a cross-validation-only task (splits test_size 0; the paper's treatment response, Sec. IV-B):
                # the held-out fold of each CV run is the estimate
                block = record.get("val")
            if not isinstance(block, dict):
                raise ValueError(f"{path}: no '{split}' block")
            cell.values.append(block.get(key))
            cell.sources.append(self.rel(path))
        return cell

    def clusters(self, variant: str) -> tuple[dict | None, str | None]:
        path = self.root / "cluster" / variant / "clusters.json"
        return (_read_json(path), self.rel(path)) if path.is_file() else (None, None)


def _flag(value: Any) -> str:
    if value is None:
        return UNKNOWN
    return YES if value else NO


def _cluster_cells(res: Results, variant: str) -> tuple[dict[str, str], list[str]]:
    clu, src = res.clusters(variant)
    if clu is None:
        return {"Intra-cluster (↓)": UNKNOWN, "Inter-cluster (↑)": UNKNOWN}, []
    return ({"Intra-cluster (↓)": f"{clu['intra_mean']:.2f} ± {clu['intra_std']:.2f}",
             "Inter-cluster (↑)": f"{clu['inter_mean']:.2f} ± {clu['inter_std']:.2f}"}, [src])


def _auc_cells(res: Results, variant: str, task: str = "lidc") -> tuple[dict[str, str], list[str]]:
    name = task.upper() if task == "lidc" else task.capitalize()
    probe = res.fold_metric(res.probe_dirs(task, variant).get(FULL), "auc")
    ft = res.fold_metric(res.finetune_dirs(task, variant).get(FULL), "auc")
    return {f"{name} Probe AUC": probe.text(), f"{name} FT AUC": ft.text()}, probe.sources + ft.sources


def _classification_row(res: Results, variant: str, task: str) -> tuple[dict[str, str], list[str]]:
    row, sources = {}, []
    for kind, dirs in (("Probe", res.probe_dirs(task, variant)), ("FT", res.finetune_dirs(task, variant))):
        folder = dirs.get(FULL)
        for key, label, digits, scale in (("ap50", "AP50", 1, 100.0), ("ar50", "AR50", 1, 100.0), ("auc", "AUC", 3, 1.0)):
            cell = res.fold_metric(folder, key)
            row[f"{kind} {label}"] = cell.text(digits=digits, scale=scale)
            sources += [s for s in cell.sources if s not in sources]
    return row, sources


def _backbone(cfg: dict | None) -> str:
    arch = cfg_get(cfg, "model.arch")
    return {"swin": "Swin", "vit": "ViT"}.get(arch, UNKNOWN if arch is None else str(arch))


def _loss_on(cfg: dict | None, name: str) -> bool | None:
    w = cfg_get(cfg, f"loss.{name}")
    return None if w is None else float(w) > 0


def table_i(res: Results, variant: str, spec: dict) -> tuple[dict, list[str]]:
    cells, src = _cluster_cells(res, variant)
    return {"Backbone": _backbone(res.pretrain_config(variant)), **cells}, src


def table_ii(res: Results, variant: str, spec: dict) -> tuple[dict, list[str]]:
    return _classification_row(res, variant, "lidc")


def table_iii(res: Results, variant: str, spec: dict) -> tuple[dict, list[str]]:
    return _classification_row(res, variant, "response")


def table_iv(res: Results, variant: str, spec: dict) -> tuple[dict, list[str]]:
    cfg = res.pretrain_config(variant)
    drop = cfg_get(cfg, "noisy_teacher.drop_ratio")
    row = {"Noisy Teacher": _flag(None if cfg is None else (drop or 0) > 0),
           "Semantic Attention": _flag(None if cfg is None else cfg_get(cfg, "model.sa_stage") is not None)}
    row.update({name.upper(): _flag(_loss_on(cfg, name)) for name in ("amip", "ampd", "aitd", "gitd")})
    ft = res.fold_metric(res.finetune_dirs("lidc", variant).get(FULL), "auc")
    row["LIDC FT AUC"] = ft.text()
    return row, ft.sources


def table_v(res: Results, variant: str, spec: dict) -> tuple[dict, list[str]]:
    cfg = res.pretrain_config(variant)
    stage = cfg_get(cfg, "model.sa_stage")
    clu, csrc = _cluster_cells(res, variant)
    auc, asrc = _auc_cells(res, variant)
    return {"SA stage": UNKNOWN if stage is None else f"S{stage}", **clu, **auc}, csrc + asrc


def table_vi(res: Results, variant: str, spec: dict) -> tuple[dict, list[str]]:
    cfg = res.pretrain_config(variant)
    clu, csrc = _cluster_cells(res, variant)
    auc, asrc = _auc_cells(res, variant)
    return {"Method": spec.get("method", UNKNOWN), "Network": _backbone(cfg), **clu, **auc}, csrc + asrc


TABLES: dict[str, tuple[int, str, Callable[[Results, str, dict], tuple[dict, list[str]]]]] = {
    "I": (1, "Intra- and inter-cluster distances of UMAP clustering on OrganMNIST3D (Table I)", table_i),
    "II": (2, "LIDC malignancy: linear probing and fine-tuning, test set (Table II)", table_ii),
    "III": (3, "Immunotherapy response: linear probing and fine-tuning, test set (Table III)", table_iii),
    "IV": (4, "Noisy teacher, semantic attention and losses vs LIDC fine-tuning AUC (Table IV a+b)", table_iv),
    "V": (5, "Semantic-attention stage (Table V)", table_v),
    "VI": (6, "SMART across pretext tasks and backbones (Table VI)", table_vi),
}


def load_variants(path: str | os.PathLike) -> dict[str, dict]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"variants file {path} does not exist")
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping name -> {{method, set, label, tables}}")
    for name, spec in data.items():
        if not isinstance(spec, dict):
            raise ValueError(f"{path}: variant {name!r} is not a mapping")
        unknown = [t for t in spec.get("tables", []) if t not in TABLES]
        if unknown:
            raise ValueError(f"{path}: variant {name!r} lists unknown tables {unknown} (known: {list(TABLES)})")
    return data


def build_table(res: Results, variants: dict[str, dict], numeral: str) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """One table as a DataFrame (first column = variant label, last = sources) and ``{label: sources}``."""
    _, _, row_fn = TABLES[numeral]
    rows, sources = [], {}
    for name, spec in variants.items():
        if numeral not in spec.get("tables", []):
            continue
        label = spec.get("label", name)
        cells, src = row_fn(res, name, spec)
        rows.append({"Pretext SSL task": label, "variant": name, **cells, "sources": ";".join(src)})
        sources[label] = src
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["Pretext SSL task", "variant", "sources"])
    return frame, sources


def to_markdown(frame: pd.DataFrame, title: str, notes: list[str] | None = None) -> str:
    """A Markdown table; for a frame from :func:`smart.eval.paper_values.beside_paper` each row the paper reports is
    followed by a "↳ paper" row and a "↳ Δ (ours − paper)" row, and ``notes`` (the ‡ / n.r. footnotes) close it."""
    ours, pairs = split_paper_columns(list(frame.columns))
    shown = [c for c in ours if c not in ("variant", "sources")]
    lines = [f"**{title}**", "", "| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(str(row[c]) for c in shown) + " |")
        if any(row[paper] for paper, _ in pairs.values()):
            for name, pick in (("↳ paper", 0), ("↳ Δ (ours − paper)", 1)):
                cells = [(str(row[pairs[c][pick]]) or (NOT_REPORTED if pick == 0 else "")) if c in pairs else ""
                         for c in shown[1:]]
                lines.append("| " + " | ".join([name, *cells]) + " |")
    if frame.empty:
        lines.append("")
        lines.append("_No variant lists this table, or none has run yet._")
    if notes:
        lines += [""] + [f"{note}  " for note in notes]
    return "\n".join(lines) + "\n"


def limited_data(res: Results, variants: dict[str, dict]) -> pd.DataFrame:
    """Fig. 6 data: test AUC (mean, std over folds) per task, variant and training fraction (fine-tuning)."""
    rows = []
    for task in TASKS:
        for name, spec in variants.items():
            for frac, folder in sorted(res.finetune_dirs(task, name).items()):
                cell = res.fold_metric(folder, "auc")
                mean, std, n = mean_std(cell.values)
                if n:
                    rows.append({"task": task, "variant": name, "label": spec.get("label", name), "fraction": frac,
                                 "auc_mean": mean, "auc_std": std, "n_folds": n, "sources": ";".join(cell.sources)})
    return pd.DataFrame(rows, columns=["task", "variant", "label", "fraction", "auc_mean", "auc_std", "n_folds", "sources"])


def plot_limited_data(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Fig. 6: fine-tuning (not linear-probe) test AUC against the fraction of the training folds, per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from smart.eval.figures import save_png

    tasks = [t for t in TASKS if (frame["task"] == t).any()]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.9), dpi=110, squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sub = frame[frame["task"] == task]
        for label, grp in sub.groupby("label", sort=False):
            grp = grp.sort_values("fraction")
            ax.errorbar(grp["fraction"] * 100, grp["auc_mean"], yerr=grp["auc_std"], marker="o", capsize=3, label=label)
        ax.set_xlabel("training data (%)")
        ax.set_ylabel("test AUC, mean ± std over folds")
        ax.set_title({"lidc": "LIDC malignancy", "response": "Immunotherapy response"}[task] + ": fine-tuning",
                     fontsize=9)
        ax.legend(fontsize=7, title="pretrained encoder", title_fontsize=7)
    fig.suptitle("Limited data (Fig. 6): fine-tuned encoders, not linear probes", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path)


def write_tables(results: str | os.PathLike, variants_json: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Write ``table{1..6}.{csv,md}``, ``sources.json`` and, when fractions < 1 ran, ``limited_data.{csv,png}``.
    Every table carries the paper's value and the difference beside each cell the paper reports
    (:mod:`smart.eval.paper_values`)."""
    res = Results(results)
    variants = load_variants(variants_json)
    paper = load_paper_values()
    out = Path(out_dir)
    all_sources: dict[str, Any] = {}
    for numeral, (number, title, _) in TABLES.items():
        frame, sources = build_table(res, variants, numeral)
        frame = beside_paper(frame, numeral, paper)  # the paper's value and our distance to it, per cell
        write_csv(out / f"table{number}.csv", frame)
        notes = paper_notes(numeral, frame["variant"].tolist(), paper)
        write_text(out / f"table{number}.md", to_markdown(frame, f"Table {numeral}: {title}", notes))
        all_sources[f"table{number}"] = sources
    limited = limited_data(res, variants)
    if (limited["fraction"] < FULL).any():
        write_csv(out / "limited_data.csv", beside_paper(limited, "Fig. 6", paper))
        plot_limited_data(limited, out / "limited_data.png")
        all_sources["limited_data"] = {r["label"] + f"@{r['fraction']}": r["sources"].split(";") for _, r in limited.iterrows()}
    write_json(out / "sources.json", all_sources)
    return all_sources
