"""Variants (config ``variants``): named encoders to compare, each a pretraining method plus overrides, or
``scratch`` (a randomly initialised encoder of the same architecture, no pretraining).

The facts that depend on the resolved pretraining config (the architecture, whether the encoder has a [CLS]
token) come from :class:`smart.workflow.plan.Plan`, never from method names.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from smart.overlay import merged
from smart.workflow.overrides import optional_arg, set_args

SCRATCH = "scratch"  # the variant method without pretraining (config/schema.yaml variants.*.method)
# The ablation Fig. 10 draws (one UMAP panel per variant of the noisy teacher's patch-drop-ratio sweep, Sec. VI-E).
PDR_ABLATION = "pdr"


def variant_names(config: Mapping[str, Any]) -> list[str]:
    return list(config["variants"])


def is_pretrained(config: Mapping[str, Any], variant: str) -> bool:
    return config["variants"][variant]["method"] != SCRATCH


def pretrained_variants(config: Mapping[str, Any], variants: Sequence[str] | None = None) -> list[str]:
    """``variants`` (default: every variant, config order) less the scratch ones."""
    return [v for v in (variants or variant_names(config)) if is_pretrained(config, v)]


def sa_variants(config: Mapping[str, Any], variants: Sequence[str] | None = None) -> list[str]:
    """Pretrained variants with ``sa`` (an attention map: attention figures, zero-shot DSC)."""
    return [v for v in pretrained_variants(config, variants) if config["variants"][v].get("sa", True)]


def default_heads(sa: bool) -> list[str]:
    """The fine-tuning head of a variant that names none: the SA [CLS] when the encoder has SA, else the pooled
    last stage (paper Sec. VI-D; ``smart.models.classifier.HEADS``)."""
    return ["cls"] if sa else ["pooled"]


def variant_heads(config: Mapping[str, Any], variant: str) -> list[str]:
    spec = config["variants"][variant]
    return list(spec.get("heads") or default_heads(spec.get("sa", True)))


def pretraining_overrides(config: Mapping[str, Any], variant: str) -> dict[str, Any]:
    """``pretrain.set`` then the variant's ``set`` (later wins): what ``smart pretrain --set`` receives."""
    return merged(config["pretrain"]["set"], config["variants"][variant].get("set"))


def model_overrides(config: Mapping[str, Any], variant: str) -> dict[str, Any]:
    """The ``model.*`` keys of :func:`pretraining_overrides`: the encoder's architecture."""
    return {k: v for k, v in pretraining_overrides(config, variant).items() if k.startswith("model.")}


def pretrain_words(config: Mapping[str, Any], variant: str) -> str:
    """The arguments of ``smart pretrain`` for ``variant``: method, preset, config file, step cap, ``--set``s."""
    pre = config["pretrain"]
    return " ".join(filter(None, [
        f"--method {shlex.quote(config['variants'][variant]['method'])}", optional_arg("--preset", pre["preset"]),
        optional_arg("--config", pre["config_yaml"]), optional_arg("--max-steps", pre["max_steps"]),
        set_args(pretraining_overrides(config, variant))]))


def scratch_overrides(config: Mapping[str, Any], variant: str) -> dict[str, Any]:
    """Downstream keys that make ``--encoder none`` build the variant's architecture (smart.downstream.protocol
    ``build_scratch_encoder``): SMART's at the pretraining preset plus every ``model.*`` override (as
    ``scratch_model.*``)."""
    out: dict[str, Any] = {"scratch_method": "smart"}
    if config["pretrain"]["preset"]:
        out["scratch_preset"] = config["pretrain"]["preset"]
    out.update({f"scratch_{k}": v for k, v in model_overrides(config, variant).items()})
    return out


def plan_variants(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every variant as method, set, label, tables, sa and heads with the defaults made explicit (``heads``: the
    fine-tuning heads actually run, so ``smart tables`` finds the ``{variant}__{head}`` folders), in name order (the
    tables' row order): :attr:`smart.workflow.plan.Plan.variants`."""
    out = {}
    for name in sorted(variant_names(config)):
        spec = config["variants"][name]
        out[name] = {"method": spec["method"], "set": dict(spec.get("set") or {}), "label": spec.get("label", name),
                     "tables": list(spec.get("tables") or []), "sa": bool(spec.get("sa", True)),
                     "heads": variant_heads(config, name)}
    return out


def pdr_sweep_variants(config: Mapping[str, Any]) -> list[str]:
    """The variants of the ``pdr`` ablation (Fig. 10), once each, when clustering runs; else none."""
    if not config["cluster"]["enabled"]:
        return []
    return list(dict.fromkeys(config["ablations"].get(PDR_ABLATION, [])))


def check_ablations(config: Mapping[str, Any]) -> None:
    """Every ablation names configured variants; the ``pdr`` sweep only pretrained ones (Fig. 10 draws the UMAP of
    each pretrained encoder)."""
    names = set(config["variants"])
    for ablation, members in config.get("ablations", {}).items():
        unknown = sorted(set(members) - names)
        if unknown:
            raise ValueError(f"config ablations.{ablation}: unknown variant(s) {unknown}; known: {sorted(names)}")
    scratch = [v for v in config.get("ablations", {}).get(PDR_ABLATION, []) if not is_pretrained(config, v)]
    if scratch:
        raise ValueError(f"config ablations.{PDR_ABLATION}: {scratch} have no pretraining (method scratch); Fig. 10 "
                         f"draws the UMAP of each pretrained encoder of the drop-ratio sweep")
