"""SMART workflow: `snakemake --cores all` runs the embedded synthetic demo; `--configfile config/paper.yaml
--profile slurm` runs the paper. Targets: all, preprocess, pretrain_all, finetune_all, cluster_all, zeroshot_all,
tables, segmentation, study, rehearsal (every rule family once: config/rehearsal.yaml), ablation_<name> (one per
entry of config `ablations`). See docs/workflow.md."""

import os

from snakemake.utils import min_version

min_version("9.0")

# With --software-deployment-method conda, envs/<group>.post-deploy.sh installs the `smart` package into each env
# from the repository this Snakefile is in (docs/workflow.md "Conda environments"). Set here, never read: a user needs
# no such variable (so no `envvars:` directive).
os.environ.update(SMART_REPO=workflow.basedir)


# Config layering (docs/workflow.md "Configuration"): schema defaults <- ONE config <- `--config key=value`.
# The demo config is that config only when the command line names no `--configfile`: Snakemake would otherwise
# deep-merge `--configfile X` onto it, and demo variants, counts and `--set` values would reach every run of X.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/preprocess.smk"
include: "rules/clinical.smk"
include: "rules/pretrain.smk"
include: "rules/finetune.smk"
include: "rules/cluster.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/segmentation.smk"
include: "rules/study.smk"


onstart:
    refuse_placeholder_resources()


rule all:
    default_target: True
    input:
        preprocess_targets(),
        rules.tables.output,
        segmentation_targets() if config["segmentation"]["enabled"] else [],


rule preprocess:
    input:
        preprocess_targets(),


rule pretrain_all:
    input:
        pretrain_targets(),


rule finetune_all:
    input:
        finetune_targets(),


rule cluster_all:
    input:
        cluster_targets(),


rule zeroshot_all:
    input:
        zeroshot_targets(),


rule segmentation:
    input:
        segmentation_targets(),


# Every rule family of `all` once, for one variant (issue 12's rehearsal of the paper config; README "Rehearsal").
rule rehearsal:
    input:
        rehearsal_targets(),


# The CPU study of issue #13 (seeds x methods at the `small` preset): results/study/study.md.
rule study:
    input:
        rules.study_table.output,


# One target per ablation: every result of its variants, sharing preprocessing and splits with all other runs.
for _ablation, _members in config["ablations"].items():

    rule:
        name:
            f"ablation_{_ablation}"
        input:
            variant_targets(_members),
