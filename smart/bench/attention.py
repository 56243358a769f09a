"""``smart bench attention``: training-mode (forward + backward) window attention, MONAI's explicit-softmax path vs
:class:`smart.models.window_attention.FusedWindowAttention` forced onto SDPA with grad (``sdpa_with_grad="always"``),
and the same swap on a whole ``SwinSMART`` encoder (tokens + pooled loss; the SA block is identical in both). Both
contenders share weights and inputs and are timed round-robin in one process; the anchor is MONAI's path (ratio 1).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from monai.networks.nets.swin_unetr import WindowAttention, compute_mask, get_window_size

from smart.bench.timing import interleaved_medians, summarize
from smart.models.window_attention import FusedWindowAttention, fuse_window_attention

ANCHOR = "monai_explicit"
CANDIDATE = "fused_sdpa"

# name -> (channels, heads, window edge, windows per image, images). "paper_*" are the paper's windows (4³ = 64
# tokens) at the stage-1 / stage-3 widths of Sec. IV-C; the stage-1 row is one eighth of a 128³ crop's 4096 windows
# so that it fits a CPU run.
WINDOW_CASES: dict[str, tuple[int, int, int, int, int]] = {
    "tiny_w2_c24": (24, 2, 2, 64, 2),
    "paper_w4_stage1_c48": (48, 4, 4, 512, 1),
    "paper_w4_stage3_c192": (192, 8, 4, 8, 2),
}
SMOKE_CASES: dict[str, tuple[int, int, int, int, int]] = {"smoke_w2_c8": (8, 2, 2, 8, 1)}


def _window_step(module: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        module.zero_grad(set_to_none=True)
        xi = x.detach().requires_grad_(True)
        module(xi, mask).square().mean().backward()

    return step


def _window_case(channels: int, heads: int, window: int, windows: int, images: int, device: torch.device
                 ) -> dict[str, Callable[[], None]]:
    edge = round(windows ** (1 / 3)) * window
    if (edge // window) ** 3 != windows:
        raise ValueError(f"windows per image must be a cube, got {windows}")
    spatial, win = (edge,) * 3, (window,) * 3
    ws, ss = get_window_size(spatial, win, tuple(w // 2 for w in win))
    mask = compute_mask(list(spatial), ws, ss, device)  # shifted-window blocks: the costlier case
    torch.manual_seed(0)
    ref = WindowAttention(channels, heads, win, qkv_bias=True, use_flash_attention=False).to(device).train()
    fused = copy.deepcopy(ref)
    fused.use_flash_attention = True
    fuse_window_attention(fused)
    fused.sdpa_with_grad = "always"  # time the SDPA-with-grad path itself, whatever the device default is
    x = torch.randn(images * windows, window**3, channels, generator=torch.Generator().manual_seed(0)).to(device)
    return {ANCHOR: _window_step(ref, x, mask), CANDIDATE: _window_step(fused, x, mask)}


def _encoder_case(preset: str, device: torch.device) -> tuple[dict[str, Callable[[], None]], dict[str, Any]]:
    """Whole student encoder forward + backward at ``preset``'s model and crop, flash swap off vs on."""
    from smart.config import load_config
    from smart.models.swin import SwinSMART

    cfg = load_config("smart", preset, None, [])
    fns = {}
    x = torch.rand((int(cfg["data"]["batch_size"]), 1, *cfg["data"]["crop_size"]),
                   generator=torch.Generator().manual_seed(0)).to(device)
    for name, flash in ((ANCHOR, False), (CANDIDATE, True)):
        torch.manual_seed(0)
        m = cfg["model"]  # build_encoder has no flash switch (it is always on), so build SwinSMART directly
        model = SwinSMART(embed_dim=m["embed_dim"], depths=m["depths"], num_heads=m["num_heads"],
                          window_size=m["window_size"], patch_size=m["patch_size"], drop_path_rate=m["drop_path_rate"],
                          sa_stage=m["sa_stage"], sa_depth=m["sa_depth"], sa_heads=m["sa_heads"],
                          use_flash_attention=flash).to(device).train()
        for sub in model.modules():
            if isinstance(sub, FusedWindowAttention):
                sub.sdpa_with_grad = "always"

        def step(model: torch.nn.Module = model) -> None:
            model.zero_grad(set_to_none=True)
            out = model(x)
            (out.tokens.square().mean() + out.pooled.square().mean()).backward()

        fns[name] = step
    return fns, {"batch": x.shape[0], "crop": list(x.shape[2:])}


def _record(times: dict[str, list[float]]) -> dict[str, Any]:
    anchor = summarize(times[ANCHOR])["median_s"]
    return {name: {**summarize(ts), "ratio_vs_" + ANCHOR: summarize(ts)["median_s"] / anchor}
            for name, ts in times.items()}


def run_attention_bench(preset: str = "tiny", repeats: int = 7, warmup: int = 2, smoke: bool = False,
                        encoder: bool = True, device: str | None = None) -> dict[str, Any]:
    """fp32 on every device: this compares the two attention paths, not precisions."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cases = SMOKE_CASES if smoke else WINDOW_CASES
    out: dict[str, Any] = {"preset": preset, "device": str(dev), "torch": torch.__version__,
                           "threads": torch.get_num_threads(), "anchor": ANCHOR, "window_attention": {}}
    for name, spec in cases.items():
        times = interleaved_medians(_window_case(*spec, dev), repeats, warmup, dev)
        out["window_attention"][name] = {"channels": spec[0], "heads": spec[1], "window": spec[2],
                                         "windows": spec[3] * spec[4], "results": _record(times)}
    if encoder:
        fns, meta = _encoder_case(preset, dev)
        out["encoder"] = {**meta, "results": _record(interleaved_medians(fns, repeats, warmup, dev))}
    return out
