"""Fig. 10: UMAPs of OrganMNIST3D embeddings over the noisy teacher's patch-drop-ratio (PDR) sweep (paper Sec. VI-E,
"Impact of Patch Dropout Ratio (PDR) for Noisy Teacher": SMARTFormer pretrained with PDR 0.0, 0.1, 0.3, 0.5, 0.7,
0.9).

One panel per variant of the sweep, ordered by its drop ratio and titled with it. The ratio is
``noisy_teacher.drop_ratio`` of the variant's resolved pretraining config (``pretrain/{variant}/config.json``), never
its name or label, so a variant named ``pdr_01`` that was trained with another ratio shows the ratio it ran with.
Each panel redraws the variant's 2-D layout (``cluster/{variant}/umap.csv``, from ``smart umap``) coloured by organ
(:func:`smart.eval.clustering.organ_colour`, the same colours in every panel; one legend for the figure) and states
the intra-/inter-cluster distances of its ``clusters.json`` (Table I's numbers, measured on that layout).

The workflow draws it from ``smart tables --pdr-sweep`` when the config has an ablation named ``pdr``
(docs/evaluation.md "Tables").
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Protocol

import pandas as pd


class Results(Protocol):
    """What this module reads from a results folder; ``smart.eval.tables.Results`` provides it. Stated here as a
    protocol because tables imports this module (write_tables): importing tables back, even for typing only, would
    make a cycle."""

    root: Path

    def rel(self, path: Path) -> str: ...

    def pretrain_config(self, variant: str) -> dict | None: ...

    def clusters(self, variant: str) -> tuple[dict | None, str | None]: ...

STEM = "pdr_umaps"  # results/tables/pdr_umaps.{csv,png}
COLUMNS = ["pdr", "variant", "label", "intra_mean", "intra_std", "inter_mean", "inter_std", "n", "layout", "sources"]


def _drop_ratio(res: Results, variant: str) -> float:
    path = res.root / "pretrain" / variant / "config.json"
    cfg = res.pretrain_config(variant)
    if cfg is None:
        raise ValueError(f"{path}: not found; Fig. 10 titles each panel with the drop ratio of the variant's resolved "
                         f"pretraining config (smart pretrain writes it)")
    drop = (cfg.get("noisy_teacher") or {}).get("drop_ratio") if isinstance(cfg, dict) else None
    if isinstance(drop, bool) or not isinstance(drop, (int, float)) or not math.isfinite(drop):
        raise ValueError(f"{path}: noisy_teacher.drop_ratio is {drop!r}, not a number; Fig. 10 orders and titles its "
                         f"panels by it")
    return float(drop)


def pdr_sweep(res: Results, variants: dict[str, dict], sweep: list[str]) -> pd.DataFrame:
    """Fig. 10 data: one row per variant of ``sweep`` with its drop ratio (``pdr``), label, the UMAP distances of its
    ``clusters.json`` (mean and std over classes / class pairs), its number of samples ``n``, the layout file
    (relative to the results root) and the files read (``sources``); sorted by ``pdr``, ties in ``sweep`` order.

    ``ValueError`` naming the file when a variant of ``sweep`` is not in ``variants``, or its resolved config, drop
    ratio, ``clusters.json`` or ``umap.csv`` is missing: the figure is asked for, so a hole in it is an error."""
    if not sweep:
        raise ValueError("PDR sweep: no variants given")
    unknown = [v for v in sweep if v not in variants]
    if unknown:
        raise ValueError(f"PDR sweep: variant(s) {unknown} are not in the variants file (known: {list(variants)})")
    rows = []
    for name in dict.fromkeys(sweep):  # a variant named twice is one panel
        drop = _drop_ratio(res, name)
        clusters, clusters_src = res.clusters(name)
        if clusters is None:
            raise ValueError(f"{res.root / 'cluster' / name / 'clusters.json'}: not found (smart umap writes it)")
        layout = res.root / "cluster" / name / "umap.csv"
        if not layout.is_file():
            raise ValueError(f"{layout}: not found (smart umap writes the 2-D layout beside clusters.json)")
        missing = [k for k in COLUMNS[3:7] if k not in clusters]
        if missing:
            raise ValueError(f"{res.root / clusters_src}: no {missing} (expected the output of smart umap)")
        config_src = res.rel(res.root / "pretrain" / name / "config.json")
        rows.append({"pdr": drop, "variant": name, "label": variants[name].get("label", name),
                     **{k: float(clusters[k]) for k in COLUMNS[3:7]}, "n": clusters.get("n"),
                     "layout": res.rel(layout), "sources": ";".join([config_src, clusters_src, res.rel(layout)])})
    return pd.DataFrame(rows, columns=COLUMNS).sort_values("pdr", kind="stable").reset_index(drop=True)


def ratio_text(pdr: float) -> str:
    """A drop ratio as the paper writes it: one decimal (0.0, 0.7) unless it needs more (0.25)."""
    return f"{pdr:.1f}" if round(pdr, 1) == pdr else f"{pdr:g}"


def panel_title(row: pd.Series) -> str:
    """``PDR <ratio> (<variant>)`` over ``intra <mean ± std> · inter <mean ± std>`` (2-D UMAP distances)."""
    return (f"PDR {ratio_text(row['pdr'])} ({row['variant']})\n"
            f"intra {row['intra_mean']:.2f} ± {row['intra_std']:.2f} · inter {row['inter_mean']:.2f} ± "
            f"{row['inter_std']:.2f}")


def pdr_sweep_figure(frame: pd.DataFrame, root: str | os.PathLike, columns: int = 3):
    """The Fig. 10 figure of :func:`pdr_sweep`'s ``frame``: one panel per row, in row order, ``columns`` per line,
    each the layout ``root / row.layout`` (columns x, y, label) coloured by organ and titled :func:`panel_title`;
    one organ legend for all panels. Returns the Figure (axes in ``fig.axes``: the panels, in order)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from smart.eval.clustering import class_name, organ_colour, scatter_organs
    from smart.inputs import InputFileError, read_csv

    if frame.empty:
        raise ValueError("PDR sweep: no panels to draw")
    ncols = min(columns, len(frame))
    nrows = math.ceil(len(frame) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols + 1.6, 3.4 * nrows), dpi=110, squeeze=False)
    flat = list(axes.ravel())
    organs: set[int] = set()
    for ax, (_, row) in zip(flat, frame.iterrows()):
        path = Path(root) / row["layout"]
        layout = read_csv(path, "UMAP layout")
        if not {"x", "y", "label"} <= set(layout.columns):
            raise InputFileError(path, "needs columns x, y, label (the layout smart umap writes)")
        labels = layout["label"].to_numpy(dtype=int)
        scatter_organs(ax, layout[["x", "y"]].to_numpy(), labels, size=4)
        organs.update(int(c) for c in set(labels))
        ax.set_title(panel_title(row), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in flat[len(frame):]:
        fig.delaxes(ax)
    handles = [Line2D([], [], marker="o", linestyle="", markersize=5, color=organ_colour(c), label=class_name(c))
               for c in sorted(organs)]
    fig.legend(handles=handles, title="organ", loc="center right", fontsize=7, title_fontsize=7, frameon=False)
    fig.suptitle("UMAP of OrganMNIST3D features over the noisy teacher's patch drop ratio (Fig. 10)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / fig.get_figwidth(), 1))
    return fig


def plot_pdr_sweep(frame: pd.DataFrame, root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """:func:`pdr_sweep_figure` written atomically as PNG."""
    from smart.eval.figures import save_png

    return save_png(pdr_sweep_figure(frame, root), path)
