"""Schema filling, the checks before any job, path helpers, targets and wildcard constraints for every rule file.

What the workflow decides (variants, heads, overrides, tasks, segmentation and study arms, resources) lives in
`smart.workflow` (unit-tested in tests/workflow/); the functions here turn it into paths and shell words. Rules never
contain lambdas: every input/params function lives here and is named after what it computes.
"""

import json
import os
import shlex
import sys
from functools import partial

import yaml
from snakemake.utils import update_config

from smart.workflow import inputs as wf_inputs, overrides as wf_overrides, resources as wf_resources
from smart.workflow import segmentation as wf_seg
from smart.workflow import study as wf_study, targets as wf_targets, tasks as wf_tasks, variants as wf_variants
from smart.workflow.checks import check_before_any_job, check_raw_config
from smart.workflow.placeholders import placeholder_resources
from smart.workflow.schema import fill_defaults, typed_command_line, validate_config
from smart.workflow.targets import BENCH, LOGS, PLAN_JSON, PRE, PYLIDC_NODULES, RANDOM_ZEROSHOT, RESULTS, STUDY, SYNTH
from smart.workflow.targets import SEGMENTATION_TABLES, encoder_path, monai_ssl_path, segmentation_metrics
from smart.workflow.targets import splits_json, study_encoder

set_args, optional_arg = wf_overrides.set_args, wf_overrides.optional_arg


def stop(err):
    """A bad config ends the run with its message (no traceback through this file)."""
    sys.exit(f"SMART config error: {err}")


update_config(config, typed_command_line(workflow.config_settings.config))  # `--config` is the last layer
with open(os.path.join(workflow.basedir, "config", "schema.yaml")) as _fh:
    _schema = yaml.safe_load(_fh)
try:
    check_raw_config(config)
    # Reject typo'd keys / wrong types before anything imports torch (one line: key, value, what is allowed; not
    # Snakemake's validate(), whose error prints the whole schema), then make every default explicit
    # (fill_defaults, not the validator's set_default, which would fill a partial resource block from the generic
    # definition, not its group).
    validate_config(config, _schema)
except ValueError as err:
    stop(err)
fill_defaults(config, _schema, _schema.get("definitions", {}))
CONFIG_FILES = [os.path.relpath(f) for f in workflow.overwrite_configfiles] or ["config/config.yaml"]
try:
    # The one call of every check before any job (smart.workflow.checks): cross-key checks, placeholders, and
    # every variant / task / study arm resolved through the package (this imports torch, after the schema).
    PLAN = check_before_any_job(config, CONFIG_FILES, wf_targets.requested_targets(sys.argv[1:]))
except ValueError as err:
    stop(err)

# `smart synth` generators a task can draw its cohort from (config/schema.yaml tasks.<name>.synthetic)
SYNTHETIC_GENERATORS = "|".join(_schema["properties"]["tasks"]["additionalProperties"]["properties"]["synthetic"]["enum"])


# ---------------------------------------------------------------------------------------------- shell helpers
def synth_command(kind):
    """The one shell line every synth rule runs (only the kind and the count differ)."""
    return (f"python -m smart synth {kind} --out {{params.out:q}} --seed {{params.seed}} "
            f"--count {{params.n}} > {{log:q}} 2>&1")


def rule_resources(group):
    return wf_resources.rule_resources(config, group)


def rule_threads(group):
    return config["resources"][group]["cpus_per_task"]


def pretrain_launcher(wildcards):
    return wf_resources.pretrain_launcher(config)


def refuse_placeholder_resources():
    """onstart (never in a dry run): no job whose resources still hold REPLACE_ME is submitted."""
    error = placeholder_resources(workflow.dag.needrun_jobs())
    if error:
        raise ValueError(error)


def output_parent(wildcards, output):
    """The folder of a rule's first output: the `--out DIR` of steps that write several files there."""
    return os.path.dirname(output[0])


def output_itself(wildcards, output):
    return output[0]


def results_root(wildcards):
    return RESULTS


def numba_cache_dir(wildcards):
    # umap-learn compiles with numba into a cache; a writable one inside results/ also works in read-only envs.
    return f"{RESULTS}/.numba_cache"


# ---------------------------------------------------------------------------------------------- variants
variant_names = partial(wf_variants.variant_names, config)
is_pretrained = partial(wf_variants.is_pretrained, config)
pretrained_variants = partial(wf_variants.pretrained_variants, config)
sa_variants = partial(wf_variants.sa_variants, config)
variant_heads = partial(wf_variants.variant_heads, config)

def encoder_arg(wildcards):
    """`--encoder` value: the pretrained encoder file, or `none` for a scratch variant."""
    return encoder_path(wildcards.variant) if is_pretrained(wildcards.variant) else "none"


def encoder_input(wildcards):
    return [encoder_path(wildcards.variant)] if is_pretrained(wildcards.variant) else []


def pretrain_args(wildcards):
    return wf_variants.pretrain_words(config, wildcards.variant)


def downstream_args(wildcards):
    return wf_tasks.downstream_words(config, wildcards.task, wildcards.variant)


# ---------------------------------------------------------------------------------------------- data
def ct_inputs(wildcards):
    return wf_inputs.ct_inputs(config)


def resample_input_args(wildcards, input):
    """Shell words for `smart resample --input`: the synthetic folder's volumes (globbed by the shell at run
    time, when they exist) or the configured real paths."""
    if config["data"]["ct"]["source"] == "synthetic":
        return f"{shlex.quote(input.ct[0])}/*.nii.gz"
    return " ".join(shlex.quote(p) for p in input.ct)


task_names = partial(wf_tasks.task_names, config)
tasks_from = partial(wf_tasks.tasks_from, config)

def cohort_input(wildcards):
    return wf_inputs.cohort_csv(config, wildcards.task)


def splits_input(wildcards):
    return splits_json(wildcards.task)


def splits_test_size(wildcards):
    """`smart splits --test-size` of the task: its own test_size, else splits.test_size."""
    own = config["tasks"][wildcards.task]["test_size"]
    return config["splits"]["test_size"] if own is None else own


def task_dicom_root(wildcards):
    return config["tasks"][wildcards.task]["dicom_root"]


def synthetic_count(wildcards):
    return config["synthetic"]["counts"][wildcards.generator]


organmnist_npz = partial(wf_inputs.organmnist_npz, config)
raters_csv = partial(wf_inputs.raters_csv, config)
input_raters_csv = partial(wf_inputs.input_raters_csv, config)
consensus_raters_csv = wf_inputs.consensus_raters_csv

def lesion_table(wildcards):
    """The full-CT lesion table of a task with source lesions (its `cohort`: CTs + a mask or centre per lesion)."""
    return config["tasks"][wildcards.task]["cohort"]


def zeroshot_encoder_input(wildcards):
    return [] if wildcards.variant == RANDOM_ZEROSHOT else [encoder_path(wildcards.variant)]


def zeroshot_encoder_arg(wildcards):
    return RANDOM_ZEROSHOT if wildcards.variant == RANDOM_ZEROSHOT else encoder_path(wildcards.variant)


# ---------------------------------------------------------------------------------------------- targets
preprocess_targets = partial(wf_targets.preprocess_targets, config)
pretrain_targets = partial(wf_targets.pretrain_targets, config)
finetune_targets = partial(wf_targets.finetune_targets, config)
cluster_targets = partial(wf_targets.cluster_targets, config)
zeroshot_targets = partial(wf_targets.zeroshot_targets, config)
rehearsal_targets = partial(wf_targets.rehearsal_targets, config)
variant_targets = partial(wf_targets.variant_targets, config)


def table_inputs(wildcards):
    return wf_targets.table_inputs(config)


pdr_sweep_variants = partial(wf_variants.pdr_sweep_variants, config)

def plan_json_arg():
    """The plan resolved before any job, as the JSON string the `plan_json` rule writes (config order kept)."""
    return json.dumps(PLAN.to_dict())


def pdr_sweep_inputs(wildcards):
    return wf_targets.pdr_sweep_inputs(config)


def pdr_sweep_arg(wildcards):
    """`smart tables --pdr-sweep` with the sweep's variants, or nothing when the config has no `pdr` ablation."""
    names = pdr_sweep_variants()
    return " ".join(["--pdr-sweep", *map(shlex.quote, names)]) if names else ""


def _alternatives(names):
    # no name: a pattern that matches nothing (an empty alternation would match the empty string)
    return "|".join(sorted(names, key=len, reverse=True)) or "(?!)"


ZEROSHOT_NAMES = _alternatives(variant_names() + [RANDOM_ZEROSHOT])


wildcard_constraints:
    variant=_alternatives(variant_names()),
    task=_alternatives(config["tasks"]),
    head=_alternatives(_schema["properties"]["variants"]["additionalProperties"]["properties"]["heads"]["items"]["enum"]),
    fraction=r"[01]\.[0-9]+",
    fold=r"[0-9]+",


# ---------------------------------------------------------------------------------------------- segmentation
SEG = config["segmentation"]
segmentation_csv = partial(wf_inputs.segmentation_csv, config)
segmentation_targets = partial(list, SEGMENTATION_TABLES)


def segmentation_variants():
    return PLAN.segmentation_variants


def segmentation_weights_input(wildcards):
    return [monai_ssl_path(wildcards.variant)] if is_pretrained(wildcards.variant) else []


def segmentation_weights_arg(wildcards):
    return monai_ssl_path(wildcards.variant) if is_pretrained(wildcards.variant) else "none"


def segmentation_args(wildcards):
    return wf_seg.segmentation_words(config, wildcards.variant)


# ---------------------------------------------------------------------------------------------- study (rules/study.smk)
STUDY_CFG = config["study"]


study_arms = partial(wf_study.study_arms, config)

def study_method(wildcards):
    return STUDY_CFG["methods"][wildcards.arm]


def study_pretrain_sets(wildcards):
    return set_args(wf_study.arm_sets(config, wildcards.arm))


study_arm_labels = partial(wf_study.arm_labels, config)

def study_encoder_arg(wildcards):
    return wf_targets.study_encoder_arg(config, wildcards.arm, wildcards.seed)


def study_encoder_input(wildcards):
    return [] if study_encoder_arg(wildcards) == "none" else [study_encoder_arg(wildcards)]


def study_probe_args(wildcards):
    return set_args(wf_study.probe_overrides(config, wildcards.arm, int(wildcards.seed)))


def study_zeroshot_encoder_input(wildcards):
    return [] if wildcards.arm == RANDOM_ZEROSHOT else [study_encoder(wildcards.arm, wildcards.seed)]


def study_zeroshot_encoder_arg(wildcards):
    return RANDOM_ZEROSHOT if wildcards.arm == RANDOM_ZEROSHOT else study_encoder(wildcards.arm, wildcards.seed)


def study_targets():
    return wf_targets.study_targets(config, PLAN)


wildcard_constraints:
    arm=_alternatives(study_arms() + [RANDOM_ZEROSHOT]),
    seed=r"[0-9]+",
