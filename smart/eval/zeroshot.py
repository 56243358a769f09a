"""Zero-shot tumour localisation from the SA attention map (paper Sec. V-E, Fig. 5).

Per case (docs/evaluation.md "Zero-shot DSC"):

1. the CT (HU) is resampled to ``spacing`` (2 mm, as in pretraining; linear) and the 5-rater consensus onto that
   grid in physical space (nearest neighbour), whatever the consensus file's own geometry;
2. one crop of the encoder's input size is taken, centred on the bounding box of the **body mask** (HU > -500,
   holes filled per axial slice so that the lungs are inside) and padded with air (-1000 HU) where the volume is smaller — the tumour label is never used to place the crop, so
   the evaluation stays zero-shot. The fraction of consensus voxels inside the crop is recorded (``coverage``).
   A crop of which less than ``min_in_image`` lies inside the CT (a CT much smaller than the crop) is excluded
   with its reason and counted — the one crop rule of :mod:`smart.data.crop_window`;
3. the crop goes through the encoder (``hu_to_unit``); the SA map on the mask grid (Eq. 1) is upsampled trilinearly
   to the crop;
4. the segmentation = voxels **inside the body mask** whose attention is above the 90th percentile of the attention
   values inside the body mask ("thresholding the attention maps using 90 % percentile"); restricting to the body
   keeps the 10 % from being spent on the air around the patient;
5. DSC against the consensus inside the crop (``smart.downstream.metrics.dice``).

The ``random`` baseline replaces step 3 by a uniform random map on the same mask grid (fixed seed).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from smart.data.crop_window import MIN_IN_IMAGE_FRACTION, CropHoldsNoImage, check_crop_holds_image, extract
from smart.data.intensity import HU_MIN, hu_to_unit
from smart.data.io import table_path
from smart.downstream.metrics import dice

BODY_HU = -500.0
PERCENTILE = 90.0


def body_mask(hu: np.ndarray, threshold: float = BODY_HU) -> np.ndarray:
    """The patient body: voxels denser than ``threshold`` HU with the holes of every axial slice filled, so the
    lungs (about -850 HU, enclosed by the chest wall in each slice) belong to the body and the air around the
    patient does not. Filling is per slice because in 3-D the airways connect the lungs to the outside air."""
    from scipy.ndimage import binary_fill_holes

    dense = np.asarray(hu) > threshold
    return np.stack([binary_fill_holes(sl) for sl in dense]) if dense.ndim == 3 else binary_fill_holes(dense)


def percentile_segmentation(attention: np.ndarray, region: np.ndarray, q: float = PERCENTILE) -> np.ndarray:
    """Voxels of ``region`` whose value exceeds the ``q``-th percentile (linear interpolation) of ``attention`` over
    ``region``. With distinct values and ``n`` region voxels this selects ``n - 1 - floor(q/100·(n-1))`` voxels, i.e.
    the top 10 % at q = 90."""
    attention = np.asarray(attention, dtype=np.float64)
    region = np.asarray(region, dtype=bool)
    if attention.shape != region.shape:
        raise ValueError(f"attention {attention.shape} and region {region.shape} differ in shape")
    if not 0.0 <= q < 100.0:
        raise ValueError(f"percentile q must be in [0, 100), got {q}")
    if not region.any():
        return np.zeros_like(region)
    threshold = np.percentile(attention[region], q)
    return region & (attention > threshold)


def upsample_attention(attention: torch.Tensor, grid: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """Trilinear upsampling of one SA map ``(N,)`` on ``grid`` (row-major, D slowest) to ``size`` voxels."""
    grid = tuple(int(g) for g in grid)
    att = torch.as_tensor(attention, dtype=torch.float32).reshape(1, 1, *grid)
    return F.interpolate(att, size=tuple(int(s) for s in size), mode="trilinear", align_corners=False)[0, 0].numpy()


def random_attention(grid: Sequence[int], seed: int) -> torch.Tensor:
    """The baseline map: i.i.d. uniform values on the mask grid, normalised to sum 1 like an SA map."""
    gen = torch.Generator().manual_seed(int(seed))
    att = torch.rand(int(np.prod(grid)), generator=gen)
    return att / att.sum()


def crop_box(body: np.ndarray, crop: Sequence[int]) -> list[int]:
    """Start index per axis of a ``crop`` window centred on the body's bounding box, clamped inside the volume
    (negative starts mean padding when the volume is smaller than the crop)."""
    shape = body.shape
    if body.any():
        idx = np.argwhere(body)
        centre = (idx.min(axis=0) + idx.max(axis=0) + 1) / 2.0
    else:
        centre = np.asarray(shape) / 2.0
    starts = []
    for c, s, k in zip(centre, shape, crop):
        if s <= k:
            starts.append(-((k - s) // 2))
        else:
            starts.append(int(min(max(round(c - k / 2.0), 0), s - k)))
    return starts


@dataclass
class CaseResult:
    case_id: str
    dsc: float
    coverage: float
    n_pred: int
    n_consensus: int
    n_body: int
    hu: np.ndarray
    attention: np.ndarray
    prediction: np.ndarray
    consensus: np.ndarray

    def row(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "dsc": self.dsc, "coverage": self.coverage, "n_pred": self.n_pred,
                "n_consensus": self.n_consensus, "n_body": self.n_body}


def evaluate_case(case_id: str, hu: np.ndarray, consensus: np.ndarray, crop: Sequence[int], attention_fn,
                  body_threshold: float = BODY_HU, q: float = PERCENTILE,
                  min_in_image: float = MIN_IN_IMAGE_FRACTION) -> CaseResult:
    """Steps 2-5 of the module docstring on arrays already at the evaluation spacing. ``attention_fn(hu_crop)``
    returns ``(attention (N,), grid)``. Raises :class:`smart.data.crop_window.CropHoldsNoImage` when less than
    ``min_in_image`` of the crop lies inside the CT."""
    if hu.shape != consensus.shape:
        raise ValueError(f"case {case_id}: CT {hu.shape} and consensus {consensus.shape} differ in shape")
    consensus = np.asarray(consensus) > 0
    starts = crop_box(body_mask(hu, body_threshold), crop)
    check_crop_holds_image(hu.shape, starts, crop, min_fraction=min_in_image)  # the centre is inside by construction
    hu_c = extract(np.asarray(hu, dtype=np.float32), starts, crop, HU_MIN)
    cons_c = extract(consensus, starts, crop, False)
    att, grid = attention_fn(hu_c)
    att_map = upsample_attention(att, grid, crop)
    body_c = body_mask(hu_c, body_threshold)
    pred = percentile_segmentation(att_map, body_c, q)
    n_cons = int(consensus.sum())
    return CaseResult(case_id=str(case_id), dsc=dice(pred, cons_c),
                      coverage=float(cons_c.sum() / n_cons) if n_cons else 1.0, n_pred=int(pred.sum()),
                      n_consensus=int(cons_c.sum()), n_body=int(body_c.sum()), hu=hu_c, attention=att_map,
                      prediction=pred, consensus=cons_c)


def load_case_arrays(image: str | os.PathLike, consensus: str | os.PathLike, spacing: float | None,
                     series_uid: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CT (HU, float32) and consensus (bool) as (D, H, W) arrays on one grid: the CT's, resampled to ``spacing`` mm
    when given. The consensus is resampled onto that grid in physical space (nearest neighbour,
    :func:`smart.data.masks.mask_on_grid`), so a mask stored with another direction, origin or spacing than its CT
    is compared where it lies, not index by index. Raises :class:`smart.data.io.ImageReadError` naming the file
    (unreadable, or a consensus that does not overlap its CT)."""
    import SimpleITK as sitk

    from smart.data.io import read_image
    from smart.data.masks import mask_on_grid, read_mask

    img = read_image(image, series_uid=series_uid)  # series_uid: a DICOM folder with several series
    if spacing:
        from smart.data.resample import resample_image

        img = resample_image(img, spacing=spacing, interpolator="linear")
    cons = mask_on_grid(read_mask(consensus), img, mask_name=consensus, reference_name=f"CT {image}")
    return sitk.GetArrayFromImage(img).astype(np.float32), cons


def overlay_figure(results: Sequence[CaseResult], title: str = "", max_cases: int | None = None):
    """Fig. 5 style, one column per case (all cases unless ``max_cases``): top, the axial CT slice through the
    consensus centre with the consensus contour; bottom, the same slice under the attention map (colour bar) with the
    consensus and the 90th-percentile segmentation contours; a legend names the contours. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    shown = list(results)[:max_cases] if max_cases else list(results)
    if not shown:
        raise ValueError("no cases to plot")
    fig, axes = plt.subplots(2, len(shown), figsize=(3.0 * len(shown) + 1.2, 6.6), dpi=110, squeeze=False)
    # one colour scale for every case (the range of all shown maps), so maps can be compared across columns
    low = min(float(np.min(r.attention)) for r in shown)
    peak = max(float(np.max(r.attention)) for r in shown)
    peak = peak if peak > low else low + 1.0
    image = None
    for col, r in enumerate(shown):
        z = int(np.argwhere(r.consensus)[:, 0].mean()) if r.consensus.any() else r.hu.shape[0] // 2
        axes[0, col].imshow(r.hu[z], cmap="gray", vmin=-1000, vmax=400)
        axes[0, col].set_title(f"{r.case_id}  DSC {r.dsc:.2f}", fontsize=8)
        axes[1, col].imshow(r.hu[z], cmap="gray", vmin=-1000, vmax=400)
        image = axes[1, col].imshow(r.attention[z], cmap="jet", alpha=0.45, vmin=low, vmax=peak)
        for ax in axes[:, col]:
            if r.consensus[z].any():
                ax.contour(r.consensus[z], levels=[0.5], colors="red", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
        if r.prediction[z].any():
            axes[1, col].contour(r.prediction[z], levels=[0.5], colors="cyan", linewidths=0.8)
    axes[0, 0].set_ylabel("CT, axial slice", fontsize=8)
    axes[1, 0].set_ylabel("attention overlay", fontsize=8)
    fig.legend(handles=[Line2D([], [], color="red", label="5-rater consensus"),
                        Line2D([], [], color="cyan", label="attention > 90th percentile (body)")],
               loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title or "zero-shot localisation", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 0.87, 1))
    bar = fig.colorbar(image, cax=fig.add_axes((0.89, 0.1, 0.015, 0.35)))
    bar.set_label("attention (SA map, upsampled)", fontsize=8)
    return fig


def plot_overlays(results: Sequence[CaseResult], path: str | os.PathLike, title: str = "",
                  max_cases: int | None = None) -> Path:
    """:func:`overlay_figure` written atomically as PNG."""
    from smart.eval.figures import save_png

    return save_png(overlay_figure(results, title, max_cases), path)


def run_zeroshot(encoder: str, raters_csv: str | os.PathLike, out_dir: str | os.PathLike,
                 crop: Sequence[int] = (128, 128, 128), spacing: float | None = 2.0, seed: int = 0,
                 body_threshold: float = BODY_HU, q: float = PERCENTILE, random_grid: Sequence[int] | None = None,
                 device: str | torch.device = "cpu", name: str = "",
                 min_in_image: float = MIN_IN_IMAGE_FRACTION) -> dict[str, Any]:
    """``smart zeroshot``: DSC of the thresholded SA map (``encoder`` = encoder.pt) or of the random baseline
    (``encoder = "random"``, map on ``random_grid``, default ``crop // 16`` = the paper's mask grid) per case of
    ``raters_csv``; writes ``dsc.csv``, ``excluded.csv`` (``case_id, file, reason``: crops that hold too little
    image, counted as ``n_excluded`` in the summary), ``summary.json`` and ``overlays.png`` (every case; titled with
    ``name``, default the encoder's folder name = the workflow's variant). ValueError when every case is excluded."""
    import pandas as pd

    from smart.atomic import write_csv, write_json
    from smart.downstream.metrics import mean_std
    from smart.provenance import provenance

    from smart.inputs import read_csv

    raters_csv = Path(raters_csv)
    frame = read_csv(raters_csv, "raters CSV")
    missing = {"case_id", "image", "consensus"} - set(frame.columns)
    if missing:
        raise ValueError(f"{raters_csv}: missing columns {sorted(missing)} (expected case_id, image, rater1..5, consensus)")
    if frame.empty:
        raise ValueError(f"{raters_csv}: no cases")
    crop = tuple(int(c) for c in crop)
    if encoder == "random":
        grid = tuple(random_grid) if random_grid else tuple(max(1, c // 16) for c in crop)
        method = "random"

        def attention_fn(hu_crop, _counter=iter(range(10**9))):
            # one independent map per case, reproducible from the seed
            return random_attention(grid, seed + next(_counter)), grid
    else:
        from smart.models.encoder_io import load_encoder

        if not Path(encoder).is_file():
            raise ValueError(f"encoder file {encoder} does not exist (or pass 'random' for the baseline)")
        model, meta = load_encoder(encoder)
        model = model.to(device)
        method = meta.get("method", "unknown") if isinstance(meta, dict) else "unknown"

        def attention_fn(hu_crop):
            att, grid = encoder_attention_on(model, hu_crop, device)
            return att.cpu(), grid

    results, excluded = [], []
    for row in frame.itertuples(index=False):
        uid = str(getattr(row, "series_uid", "") or "").strip()
        image = table_path(row.image, raters_csv.parent)
        hu, cons = load_case_arrays(image, table_path(row.consensus, raters_csv.parent),
                                    spacing, series_uid=uid if uid and uid != "nan" else None)
        try:
            results.append(evaluate_case(str(row.case_id), hu, cons, crop, attention_fn, body_threshold, q,
                                         min_in_image))
        except CropHoldsNoImage as err:
            excluded.append({"case_id": str(row.case_id), "file": str(image), "reason": f"no image: {err.reason}"})
            print(f"smart zeroshot: excluded case {row.case_id}: {image}: no image: {err.reason}", file=sys.stderr)
    if not results:
        raise ValueError(f"{raters_csv}: every case is excluded ({excluded[0]['file']}: {excluded[0]['reason']})")
    out = Path(out_dir)
    table = pd.DataFrame([r.row() for r in results])
    write_csv(out / "dsc.csv", table)
    write_csv(out / "excluded.csv", pd.DataFrame(excluded, columns=["case_id", "file", "reason"]))
    mean, std, n = mean_std(table["dsc"].tolist())
    settings = {"encoder": str(encoder), "crop": list(crop), "spacing": spacing, "percentile": q,
                "body_hu": body_threshold, "seed": seed, "min_in_image": min_in_image}
    summary = {"method": method, "dsc_mean": mean, "dsc_std": std, "n_cases": n, "n_excluded": len(excluded),
               "coverage_mean": float(table["coverage"].mean()), **settings,
               "provenance": provenance(settings, seed=seed)}
    write_json(out / "summary.json", summary)
    name = name or ("random attention" if encoder == "random" else Path(encoder).parent.name)
    plot_overlays(results, out / "overlays.png",
                  title=f"{name} (method {method}): zero-shot DSC {mean:.2f} ± {std:.2f} over {n} cases")
    return summary


def encoder_attention_on(model: torch.nn.Module, hu_crop: np.ndarray, device: str | torch.device = "cpu"
                         ) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """SA map ``(N,)`` and mask grid of one HU crop (``hu_to_unit``, eval mode, no grad)."""
    x = hu_to_unit(torch.from_numpy(np.ascontiguousarray(hu_crop, dtype=np.float32)))[None, None].to(device)
    model.eval()
    with torch.no_grad():
        out = model(x)
    if out.attention is None:
        raise ValueError("the encoder has no semantic-attention map (model.sa_stage is null); zero-shot DSC needs SA")
    return out.attention[0].float(), tuple(out.grid)
