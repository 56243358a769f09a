"""``MODEL_CARD.md`` beside every exported ``encoder.pt``: what the weights are, how they were made, and how to load
them (SMART and MONAI). Written by the pretraining loop when it exports and by ``smart export --checkpoint``.

The facts come from the run: the resolved config (method, architecture, crops, seed), the run record
(:func:`run_record`: preset / ``--config`` / ``--set`` overrides, the data manifest's sha256 and number of CTs, world
size, git SHA and versions at the start of training) and the step reached. Epochs are derived, not counted:
``step x global batch / CTs`` (each step draws ``global batch`` crop pairs, one CT each).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from smart import atomic
from smart.provenance import config_hash, file_sha256, git_sha, package_versions

FILE_NAME = "MODEL_CARD.md"

# One line per method of smart.ssl.methods (Sec. IV-A); ablations of a method name it as their base.
METHOD_SUMMARIES = {
    "smart": "SMART: masked image modelling with semantic-attention-guided masking, self-distillation (AMIP + AMPD + "
             "AITD + GITD) and a noisy (patch-dropped) EMA teacher (Sec. III)",
    "smit": "SMIT baseline: random masking, image reconstruction + patch/global self-distillation, plain EMA teacher",
    "ibot": "iBOT baseline: blockwise masking, masked-patch + global self-distillation, no reconstruction",
    "attmask": "AttMask baseline (ViT): attention-high masking from the teacher's [CLS], distillation only",
    "mst": "MST baseline (ViT): attention-low masking, reconstruction + [CLS] distillation",
}



def run_record(manifest: str | os.PathLike, n_images: int, world_size: int, *, preset: str | None = None,
               config_yaml: str | None = None, overrides: Sequence[str] | Mapping[str, Any] | None = None,
               config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a checkpoint keeps for the card (plain types): overrides, data manifest identity, world size,
    provenance at the start of training."""
    sets = [f"{k}={v}" for k, v in overrides.items()] if isinstance(overrides, Mapping) else list(overrides or [])
    return {"preset": preset, "config_yaml": None if config_yaml is None else str(config_yaml), "overrides": sets,
            "manifest": str(manifest), "manifest_sha256": file_sha256(manifest), "n_images": int(n_images),
            "world_size": int(world_size), "git_sha": git_sha(), "versions": package_versions(),
            "config_hash": None if config is None else config_hash(config)}


def _method_line(method: str) -> str:
    from smart.ssl.methods import ABLATIONS

    base = ABLATIONS[method][0] if method in ABLATIONS else method
    summary = METHOD_SUMMARIES.get(base, "")
    return f"`{method}`" + (f" (ablation of `{base}`)" if base != method else "") + (f" — {summary}" if summary else "")


def _architecture(model: Mapping[str, Any]) -> str:
    if model.get("arch") == "vit":
        return (f"ViT: dim {model['vit_dim']}, depth {model['vit_depth']}, heads {model['vit_heads']}, patch "
                f"{model['vit_patch']}")
    sa = "no SA block" if model.get("sa_stage") is None else f"SA block on stage {model['sa_stage']}"
    return (f"3D Swin (MONAI `SwinTransformer`): embed_dim {model['embed_dim']}, depths {list(model['depths'])}, "
            f"heads {list(model['num_heads'])}, window {model['window_size']}, patch {model['patch_size']}, {sa}")


def _sa_note(model: Mapping[str, Any]) -> str:
    """What a MONAI user gets of a backbone pretrained with an SA block (docs/ARCHITECTURE.md "SA placement")."""
    k = model.get("sa_stage")
    if k is None:
        return ""
    if model.get("sa_placement") == "branch" or k == 4:
        where = "a side branch" if k != 4 else "in-line after the last stage (it refined only the pooled token)"
        return (f"\nThe SA block (stage {k}) was {where}: MONAI's `SwinUNETR` reproduces every stage output "
                "(`hidden_states_out[0..4]`) of the pretrained backbone.\n")
    later = "stage output 4 (`hidden_states_out[4]`)" if k == 3 else (
        f"stage outputs {k + 1}..4 (`hidden_states_out[{k + 1}..4]`)")
    return (f"\n**Stage outputs after the SA block differ in MONAI.** This backbone was pretrained with the SA block "
            f"in-line after stage {k} (`sa_placement: inline`): stage {k + 1} consumed the SA-refined tokens. MONAI's "
            f"`SwinUNETR` has no SA block, so with these weights it reproduces stage outputs 0..{k} "
            f"(`hidden_states_out[0..{k}]`) exactly, but {later} sees the tokens "
            "without the SA residual — a shift of the size of the learnt LayerScale residual, which fine-tuning "
            "absorbs. `smart.models.encoder_io.load_encoder` carries the SA block and reproduces the pretrained "
            "network exactly.\n")


def _monai_section(model: Mapping[str, Any]) -> str:
    if model.get("arch") == "vit":
        return "A ViT encoder has no MONAI SwinUNETR counterpart; load it with `smart.models.encoder_io.load_encoder`.\n"
    from smart.models.monai_ssl import swin_unetr_kwargs

    kwargs = swin_unetr_kwargs({**model, "in_chans": model.get("in_chans", 1)})
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return ("MONAI's self-supervised Swin layout, read by MONAI's own `SwinUNETR.load_from` (every `swinViT` tensor "
            "when `use_v2=False`; the decoder starts from scratch):\n\n"
            "```bash\npython -m smart export --encoder encoder.pt --format monai-ssl --out monai_ssl.pt\n```\n\n"
            "```python\nimport torch\nfrom monai.networks.nets import SwinUNETR\n\n"
            f"model = SwinUNETR({args}, out_channels=2)  # out_channels: your classes incl. background\n"
            "model.load_from(torch.load(\"monai_ssl.pt\", weights_only=True))\n```\n" + _sa_note(model))


def model_card_text(cfg: Mapping[str, Any], step: int, run: Mapping[str, Any], name: str = "") -> str:
    """The card (Markdown) of an encoder exported at ``step`` from a run with resolved config ``cfg``."""
    model, data, train = cfg["model"], cfg["data"], cfg["train"]
    world = int(run.get("world_size", 1))
    global_batch = int(data["batch_size"]) * world
    n = int(run.get("n_images", 0))
    epochs = f"{step * global_batch / n:.2f}" if n else "unknown (no CT count recorded)"
    sets = ", ".join(f"`{s}`" for s in run.get("overrides") or []) or "none"
    versions = ", ".join(f"{k} {v}" for k, v in (run.get("versions") or {}).items())
    crop = "x".join(str(c) for c in data["crop_size"])
    rows = [
        ("Method", _method_line(str(cfg.get("method", "")))),
        ("Architecture", _architecture(model)),
        ("Variant overrides", f"preset `{run.get('preset')}`; `--config` {run.get('config_yaml') or 'none'}; "
                              f"`--set` {sets}"),
        ("Pretraining data", f"manifest `{run.get('manifest')}` (sha256 `{run.get('manifest_sha256')}`), "
                             f"{n} CTs"),
        ("Steps", f"{step} of {train['steps']} scheduled"),
        ("Epochs", f"{epochs} (steps x global batch / CTs)"),
        ("Global batch", f"{global_batch} ({data['batch_size']} per process x {world} process(es))"),
        ("Crops", f"{crop} voxels at the manifest's spacing (2 mm in the workflow), HU clipped to [-1000, 1000] "
                  f"-> [0, 1], axes (z, y, x)"),
        ("Seed", str(train["seed"])),
        ("Git SHA", f"`{run.get('git_sha')}`"),
        ("Versions", versions),
        ("Config hash", f"`{run.get('config_hash')}` (the full resolved config is in the run's `config.json`)"),
    ]
    title = f"# Model card: SMART encoder{f' `{name}`' if name else ''}\n\n"
    table = "| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    return (title + "Self-supervised 3D CT encoder pretrained with the SMART workflow (Jiang et al., *Self-distilled "
            "Masked Attention guided masked image modeling with noise Regularized Teacher (SMART) for medical image "
            "analysis*).\n\n" + table +
            "\n## Intended use\n\nInitialising 3D CT models — classification (fine-tuning, linear probing), "
            "segmentation (SwinUNETR), retrieval — for research. Inputs: CT in Hounsfield units resampled to the "
            "pretraining spacing. Not a medical device; not validated for clinical decisions. Weights from the "
            "embedded synthetic demo only check the pipeline and carry no medical knowledge.\n"
            "\n## Load it\n\nSMART (backbone + SA block + mask token):\n\n```python\n"
            "from smart.models.encoder_io import load_encoder\n\nencoder, meta = load_encoder(\"encoder.pt\")\n```\n\n"
            + _monai_section(model))


def write_model_card(encoder_file: str | os.PathLike, cfg: Mapping[str, Any], step: int,
                     run: Mapping[str, Any]) -> Path:
    """Write ``MODEL_CARD.md`` in the folder of ``encoder_file`` (atomic); the folder name is the run's name."""
    folder = Path(encoder_file).resolve().parent
    return atomic.write_text(folder / FILE_NAME, model_card_text(cfg, step, run, name=folder.name))
