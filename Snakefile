"""SMART workflow: `snakemake --cores all` runs the embedded synthetic demo; `--configfile config/paper.yaml
--profile slurm` runs the paper. Targets: all, preprocess, pretrain_all, finetune_all, cluster_all, zeroshot_all,
tables, ablation_<name> (one per entry of config `ablations`). See docs/workflow.md."""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/preprocess.smk"
include: "rules/pretrain.smk"
include: "rules/finetune.smk"
include: "rules/cluster.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        preprocess_targets(),
        rules.tables.output,


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


# One target per ablation: every result of its variants, sharing preprocessing and splits with all other runs.
for _ablation, _members in config["ablations"].items():

    rule:
        name:
            f"ablation_{_ablation}"
        input:
            variant_targets(_members),
