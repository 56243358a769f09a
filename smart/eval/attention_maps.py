"""Fig. 4 style figure: CT crops of a few cohort samples with their SA attention map (Eq. 1) overlaid.

For each sample: the crop as the network sees it (``CohortDataset``, no augmentation), the central axial slice, and
the SA map upsampled trilinearly from the mask grid to the crop (``smart.eval.zeroshot.upsample_attention``) and
rescaled to [0, 1] per sample for display.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from smart.eval.zeroshot import upsample_attention


@torch.no_grad()
def attention_volumes(encoder: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    """``(B, D, H, W)`` SA maps upsampled to the input size of ``images (B, 1, D, H, W)``."""
    encoder.eval()
    out = encoder(images.float(), need_attention=True)
    if out.attention is None:
        raise ValueError("the encoder has no semantic-attention map (model.sa_stage is null); nothing to draw")
    return np.stack([upsample_attention(a.cpu(), out.grid, images.shape[2:]) for a in out.attention])


def attention_grid_figure(images: np.ndarray, maps: np.ndarray, titles: Sequence[str], title: str = ""):
    """Rows = samples; columns = central axial slice, slice + attention overlay (per-sample min-max, colour bar).
    ``images`` in [0, 1]; ``title`` names the encoder / task. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    if n == 0 or len(maps) != n or len(titles) != n:
        raise ValueError(f"need as many maps and titles as images, got {n} images, {len(maps)} maps, {len(titles)} titles")
    fig, axes = plt.subplots(n, 2, figsize=(6.0, 2.6 * n + 0.4), dpi=110, squeeze=False)
    for i in range(n):
        z = images[i].shape[0] // 2
        att = maps[i][z]
        span = float(maps[i].max() - maps[i].min()) or 1.0
        axes[i, 0].imshow(images[i][z], cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_title(titles[i], fontsize=8)
        axes[i, 1].imshow(images[i][z], cmap="gray", vmin=0, vmax=1)
        overlay = axes[i, 1].imshow((att - maps[i].min()) / span, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        axes[i, 1].set_title("SA attention", fontsize=8)
        for ax in axes[i]:
            ax.axis("off")
        bar = fig.colorbar(overlay, ax=axes[i, 1], fraction=0.046, pad=0.04)
        bar.set_label("attention (min-max per sample)", fontsize=7)
        bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_attention_grid(images: np.ndarray, maps: np.ndarray, titles: Sequence[str], path: str | os.PathLike,
                        title: str = "") -> Path:
    """:func:`attention_grid_figure` written atomically as PNG."""
    from smart.eval.figures import save_png

    return save_png(attention_grid_figure(images, maps, titles, title), path)


def attention_figure(encoder_path: str, cohort: str | os.PathLike, out_png: str | os.PathLike, n: int = 3,
                     crop: Sequence[int] = (64, 64, 64), sample_ids: Sequence[str] | None = None,
                     title: str = "") -> list[str]:
    """``smart attention-maps``: the first ``n`` samples (or ``sample_ids``) of ``cohort``; returns the ids drawn.
    ``title`` (default: the encoder's folder name = the workflow's variant, and its method) heads the figure."""
    from smart.data.cohort import read_cohort
    from smart.data.cohort_dataset import CohortDataset
    from smart.models.encoder_io import load_encoder

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not Path(encoder_path).is_file():
        raise ValueError(f"encoder file {encoder_path} does not exist")
    frame = read_cohort(cohort)
    if sample_ids:
        unknown = sorted(set(map(str, sample_ids)) - set(frame["sample_id"].astype(str)))
        if unknown:
            raise ValueError(f"{cohort}: unknown sample_id(s) {unknown}")
        frame = frame[frame["sample_id"].astype(str).isin(set(map(str, sample_ids)))]
    frame = frame.head(n).reset_index(drop=True)
    encoder, meta = load_encoder(encoder_path)
    ds = CohortDataset(frame, crop_size=tuple(crop), augment=False)
    images = torch.stack([ds[i][0] for i in range(len(ds))])
    maps = attention_volumes(encoder, images)
    titles = [f"{s} (label {int(lab)})" for s, lab in zip(frame["sample_id"], frame["label"])]
    method = meta.get("method", "unknown") if isinstance(meta, dict) else "unknown"
    title = title or f"{Path(encoder_path).parent.name} (method {method}) on {Path(cohort).parent.name}"
    plot_attention_grid(images[:, 0].numpy(), maps, titles, out_png, title=title)
    return [str(s) for s in frame["sample_id"]]
