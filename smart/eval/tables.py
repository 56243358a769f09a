"""The paper's Tables I-VI (and Fig. 6) assembled from whatever variants ran (docs/evaluation.md "Tables").

Inputs are the workflow's result files (docs/ARCHITECTURE.md "Result paths") and its plan ``plan.json``
(``smart.workflow.plan.Plan``), of which this reads ``variants`` (``{name: {"method", "set", "label", "tables": ["I",
...], "sa", "heads"}}``), ``tasks`` (``{name: {"label", "title"}}``: the configured downstream tasks) and
``table_tasks`` (``{"II": name, ...}``: the task that fills each classification table, so no task name is written
here). A variant appears in a table when the table's numeral is in its ``tables``
list. What a variant *is* (noisy teacher on/off, SA stage, losses, backbone) is read from the
resolved pretraining config ``pretrain/{variant}/config.json``, never inferred from its name.

Every cell is ``mean ± std`` over the folds found (sample std); AP50/AR50 are printed in % like the paper. Each row
lists the files it was computed from in a ``sources`` column, and ``sources.json`` repeats them per table.

Nothing here selects (docs/evaluation.md "Selection"): a cell reads only the block each ``metrics.json`` names as its
result (``reported``: the test set, or fold k in a cross-validation-only task), never ``inner_val``, ``history`` or
``C_search``; the fine-tuning head is picked by which runs exist (:data:`HEAD_PREFERENCE`), not by their numbers.
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
from smart.models.classifier import HEADS
from smart.models.factory import BACKBONES

HEAD_PREFERENCE = tuple(HEADS)   # registry order: the paper's default fine-tuning head ([CLS]) first
FULL = 1.0
YES, NO, UNKNOWN = "✓", "×", "—"
# The fields of the workflow's plan.json (smart.workflow.plan.Plan) the tables read.
PLAN_KEYS = ("variants", "tasks", "table_tasks")


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
            if split == "test" and record.get("reported") in ("test", "val"):
                block = record.get(record["reported"])
            elif split == "test" and isinstance(block, dict) and block.get("n") == 0:
                # a cross-validation-only task (splits test_size 0; the paper's treatment response, Sec. IV-B):
                # the held-out fold of each CV run is the estimate (files written before `reported` existed)
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


@dataclass(frozen=True)
class Task:
    """A configured downstream task: ``name`` (its results folder), ``label`` (column prefix, e.g. "LIDC FT AUC") and
    ``title`` (what it predicts: table titles, figure panels)."""

    name: str
    label: str
    title: str


def _auc_cells(res: Results, variant: str, task: Task) -> tuple[dict[str, str], list[str]]:
    probe = res.fold_metric(res.probe_dirs(task.name, variant).get(FULL), "auc")
    ft = res.fold_metric(res.finetune_dirs(task.name, variant).get(FULL), "auc")
    return {f"{task.label} Probe AUC": probe.text(), f"{task.label} FT AUC": ft.text()}, probe.sources + ft.sources


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
    return BACKBONES[arch].label if arch in BACKBONES else (UNKNOWN if arch is None else str(arch))


def _loss_on(cfg: dict | None, name: str) -> bool | None:
    w = cfg_get(cfg, f"loss.{name}")
    return None if w is None else float(w) > 0


def table_i(res: Results, variant: str, spec: dict, task: Task | None) -> tuple[dict, list[str]]:
    cells, src = _cluster_cells(res, variant)
    return {"Backbone": _backbone(res.pretrain_config(variant)), **cells}, src


def table_classification(res: Results, variant: str, spec: dict, task: Task) -> tuple[dict, list[str]]:
    """Tables II and III: probe and fine-tuning AP50 / AR50 / AUC of one task."""
    return _classification_row(res, variant, task.name)


def table_iv(res: Results, variant: str, spec: dict, task: Task) -> tuple[dict, list[str]]:
    cfg = res.pretrain_config(variant)
    drop = cfg_get(cfg, "noisy_teacher.drop_ratio")
    row = {"Noisy Teacher": _flag(None if cfg is None else (drop or 0) > 0),
           "Semantic Attention": _flag(None if cfg is None else cfg_get(cfg, "model.sa_stage") is not None)}
    row.update({name.upper(): _flag(_loss_on(cfg, name)) for name in ("amip", "ampd", "aitd", "gitd")})
    ft = res.fold_metric(res.finetune_dirs(task.name, variant).get(FULL), "auc")
    row[f"{task.label} FT AUC"] = ft.text()
    return row, ft.sources


def table_v(res: Results, variant: str, spec: dict, task: Task) -> tuple[dict, list[str]]:
    cfg = res.pretrain_config(variant)
    stage = cfg_get(cfg, "model.sa_stage")
    clu, csrc = _cluster_cells(res, variant)
    auc, asrc = _auc_cells(res, variant, task)
    return {"SA stage": UNKNOWN if stage is None else f"S{stage}", **clu, **auc}, csrc + asrc


def table_vi(res: Results, variant: str, spec: dict, task: Task) -> tuple[dict, list[str]]:
    cfg = res.pretrain_config(variant)
    clu, csrc = _cluster_cells(res, variant)
    auc, asrc = _auc_cells(res, variant, task)
    return {"Method": spec.get("method", UNKNOWN), "Network": _backbone(cfg), **clu, **auc}, csrc + asrc


@dataclass(frozen=True)
class PaperTable:
    """One of the paper's tables: its file number, its title (``{label}``/``{title}`` = the filling task's), the row
    function ``(results, variant, variant spec, task) -> (cells, sources)`` and whether a task fills it."""

    number: int
    title: str
    row: Callable[[Results, str, dict, Task | None], tuple[dict, list[str]]]
    needs_task: bool = True


TABLES: dict[str, PaperTable] = {
    "I": PaperTable(1, "Intra- and inter-cluster distances of UMAP clustering on OrganMNIST3D (Table I)", table_i,
                    needs_task=False),
    "II": PaperTable(2, "{title}: linear probing and fine-tuning, test set (Table II)", table_classification),
    "III": PaperTable(3, "{title}: linear probing and fine-tuning, test set (Table III)", table_classification),
    "IV": PaperTable(4, "Noisy teacher, semantic attention and losses vs {label} fine-tuning AUC (Table IV a+b)",
                     table_iv),
    "V": PaperTable(5, "Semantic-attention stage (Table V)", table_v),
    "VI": PaperTable(6, "SMART across pretext tasks and backbones (Table VI)", table_vi),
}


@dataclass(frozen=True)
class TaskMap:
    """The plan's ``tasks`` (config order) and the task that fills each table needing one (its ``table_tasks``)."""

    tasks: dict[str, Task]
    tables: dict[str, str]

    def for_table(self, numeral: str) -> Task | None:
        return self.tasks[self.tables[numeral]] if TABLES[numeral].needs_task else None


def load_plan(path: str | os.PathLike) -> tuple[dict[str, dict], TaskMap]:
    """``(variants, tasks)`` of the workflow's ``plan.json`` (written by its ``plan_json`` rule); ``ValueError`` (one
    line naming the file) when it is missing, not JSON, lacks the mappings ``variants`` / ``tasks`` /
    ``table_tasks``, or fails :func:`check_variants` / :func:`task_map`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"plan file {path} does not exist (the workflow's plan_json rule writes it: "
                         f"snakemake {path})")
    data = _read_json(path)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in PLAN_KEYS):
        raise ValueError(f"{path}: not a workflow plan: expected the mappings {list(PLAN_KEYS)} "
                         f"(smart.workflow.plan.Plan)")
    return check_variants(data["variants"], str(path)), task_map(data["tasks"], data["table_tasks"], str(path))


def task_map(tasks_spec: Any, tables: Any, where: str) -> TaskMap:
    """``{name: {label, title}}`` and ``{numeral: name}`` as a :class:`TaskMap`; ``ValueError`` naming ``where`` when
    a task is not a mapping, a table that needs a task lacks one or names an undefined task."""
    tasks = {}
    for name, spec in tasks_spec.items():
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: task {name!r} is not a mapping")
        tasks[name] = Task(name, str(spec.get("label", name)), str(spec.get("title", name)))
    needed = [n for n, t in TABLES.items() if t.needs_task]
    missing = [n for n in needed if n not in tables]
    if missing:
        raise ValueError(f"{where}: no task for table(s) {missing}")
    unknown = {n: t for n, t in tables.items() if n in needed and t not in tasks}
    if unknown:
        raise ValueError(f"{where}: table(s) {unknown} name tasks that are not defined (known: {list(tasks)})")
    return TaskMap(tasks, {n: tables[n] for n in needed})


def check_variants(variants: dict[str, Any], where: str) -> dict[str, dict]:
    """``variants`` unchanged once every entry is a mapping whose ``tables`` are known numerals; ``ValueError``
    naming ``where`` otherwise."""
    for name, spec in variants.items():
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: variant {name!r} is not a mapping")
        unknown = [t for t in spec.get("tables", []) if t not in TABLES]
        if unknown:
            raise ValueError(f"{where}: variant {name!r} lists unknown tables {unknown} (known: {list(TABLES)})")
    return variants


def build_table(res: Results, variants: dict[str, dict], numeral: str, task: Task | None = None
                ) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """One table as a DataFrame (first column = variant label, last = sources) and ``{label: sources}``; ``task``
    fills the tables that need one (:attr:`PaperTable.needs_task`)."""
    row_fn = TABLES[numeral].row
    if TABLES[numeral].needs_task and task is None:
        raise ValueError(f"table {numeral} needs a task")
    rows, sources = [], {}
    for name, spec in variants.items():
        if numeral not in spec.get("tables", []):
            continue
        label = spec.get("label", name)
        cells, src = row_fn(res, name, spec, task)
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


def limited_data(res: Results, variants: dict[str, dict], tasks: list[str]) -> pd.DataFrame:
    """Fig. 6 data: test AUC (mean, std over folds) per task (in ``tasks`` order), variant and training fraction
    (fine-tuning)."""
    rows = []
    for task in tasks:
        for name, spec in variants.items():
            for frac, folder in sorted(res.finetune_dirs(task, name).items()):
                cell = res.fold_metric(folder, "auc")
                mean, std, n = mean_std(cell.values)
                if n:
                    rows.append({"task": task, "variant": name, "label": spec.get("label", name), "fraction": frac,
                                 "auc_mean": mean, "auc_std": std, "n_folds": n, "sources": ";".join(cell.sources)})
    return pd.DataFrame(rows, columns=["task", "variant", "label", "fraction", "auc_mean", "auc_std", "n_folds", "sources"])


def plot_limited_data(frame: pd.DataFrame, path: str | os.PathLike, tasks: dict[str, Task]) -> Path:
    """Fig. 6: fine-tuning (not linear-probe) test AUC against the fraction of the training folds, one panel per task
    of ``tasks`` that has rows in ``frame`` (titled with the task's title)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from smart.eval.figures import save_png

    shown = [t for t in tasks if (frame["task"] == t).any()]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.5 * len(shown), 3.9), dpi=110, squeeze=False)
    for ax, task in zip(axes[0], shown):
        sub = frame[frame["task"] == task]
        for label, grp in sub.groupby("label", sort=False):
            grp = grp.sort_values("fraction")
            ax.errorbar(grp["fraction"] * 100, grp["auc_mean"], yerr=grp["auc_std"], marker="o", capsize=3, label=label)
        ax.set_xlabel("training data (%)")
        ax.set_ylabel("test AUC, mean ± std over folds")
        ax.set_title(tasks[task].title + ": fine-tuning", fontsize=9)
        ax.legend(fontsize=7, title="pretrained encoder", title_fontsize=7)
    fig.suptitle("Limited data (Fig. 6): fine-tuned encoders, not linear probes", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path)


def write_tables(results: str | os.PathLike, plan_json: str | os.PathLike, out_dir: str | os.PathLike,
                 pdr_sweep: list[str] | None = None) -> dict[str, Any]:
    """Write ``table{1..6}.{csv,md}``, ``sources.json``, when fractions < 1 ran ``limited_data.{csv,png}`` (Fig. 6)
    and, when ``pdr_sweep`` names variants, ``pdr_umaps.{csv,png}`` (Fig. 10, :mod:`smart.eval.pdr_sweep`).
    Every table carries the paper's value and the difference beside each cell the paper reports
    (:mod:`smart.eval.paper_values`). Variants and tasks come from the workflow's ``plan_json`` (:func:`load_plan`)."""
    res = Results(results)
    variants, tasks = load_plan(plan_json)
    paper = load_paper_values()
    out = Path(out_dir)
    all_sources: dict[str, Any] = {}
    for numeral, table in TABLES.items():
        task = tasks.for_table(numeral)
        frame, sources = build_table(res, variants, numeral, task)
        frame = beside_paper(frame, numeral, paper)  # the paper's value and our distance to it, per cell
        write_csv(out / f"table{table.number}.csv", frame)
        notes = paper_notes(numeral, frame["variant"].tolist(), paper)
        title = table.title.format(label=task.label, title=task.title) if task else table.title
        write_text(out / f"table{table.number}.md", to_markdown(frame, f"Table {numeral}: {title}", notes))
        all_sources[f"table{table.number}"] = sources
    limited = limited_data(res, variants, list(tasks.tasks))
    if (limited["fraction"] < FULL).any():
        write_csv(out / "limited_data.csv", beside_paper(limited, "Fig. 6", paper))
        plot_limited_data(limited, out / "limited_data.png", tasks.tasks)
        all_sources["limited_data"] = {r["label"] + f"@{r['fraction']}": r["sources"].split(";") for _, r in limited.iterrows()}
    if pdr_sweep:
        from smart.eval import pdr_sweep as fig10

        sweep = fig10.pdr_sweep(res, variants, pdr_sweep)
        write_csv(out / f"{fig10.STEM}.csv", sweep)
        fig10.plot_pdr_sweep(sweep, res.root, out / f"{fig10.STEM}.png")
        all_sources[fig10.STEM] = {r["variant"]: r["sources"].split(";") for _, r in sweep.iterrows()}
    write_json(out / "sources.json", all_sources)
    return all_sources
