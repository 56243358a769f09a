"""Helpers of the preprocessing rules (rules/preprocess.smk): resampling shards, the LIDC crop size (the CT and
LIDC input checks run before any job in smart.workflow.checks). Functions only, so `snakemake --lint` keeps rules
and functions apart."""

SHARDS = config["preprocess"]["shards"]
if not isinstance(SHARDS, int) or SHARDS < 1:
    raise ValueError(f"config preprocess.shards must be an integer >= 1, got {SHARDS!r}")


def shard_manifests():
    return [f"{PRE}/resample/shard_{i}_of_{SHARDS}.csv" for i in range(SHARDS)]


def shard_rejections():
    return [f"{PRE}/resample/shard_{i}_of_{SHARDS}.rejected.csv" for i in range(SHARDS)]


def pylidc_crop_size(wildcards):
    """LIDC crops are cut at the task's resolved fine-tuning crop edge (the largest of its crop_size, resolved by
    smart.downstream.protocol before any job: smart.workflow.plan), so no input is mostly padding."""
    return PLAN.crop_edge[wildcards.task]
