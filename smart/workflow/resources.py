"""SLURM resources and the pretraining launcher of each rule group, from config ``resources.<group>`` (mem_mb per
node, runtime in minutes; docs/workflow.md "SLURM")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def rule_resources(config: Mapping[str, Any], group: str) -> dict[str, Any]:
    """``resources:`` of every rule of ``group``: runtime, mem_mb, cpus_per_task, gpu/gpu_model (-> sbatch
    ``--gpus=<model>:<n>``). Multi-node pretraining (nodes > 1) follows the SLURM executor plugin's MPI/srun route:
    one task per node, GPUs per node through ``--gpus-per-node`` (the plugin's ``gpu`` would ask for that many GPUs
    in total)."""
    res = config["resources"][group]
    out = {"runtime": res["runtime"], "mem_mb": res["mem_mb"], "cpus_per_task": res["cpus_per_task"]}
    gpus = f"{res['gpu_model']}:{res['gpu']}" if res["gpu_model"] else str(res["gpu"])
    if res["nodes"] > 1:
        out.update(nodes=res["nodes"], tasks=res["nodes"], mpi="srun", slurm_extra=f"--gpus-per-node={gpus}")
    else:
        out["gpu"] = res["gpu"]
        if res["gpu_model"]:
            out["gpu_model"] = res["gpu_model"]
    return out


def pretrain_launcher(config: Mapping[str, Any]) -> str:
    """How ``smart pretrain`` starts: plain python on CPU; one torchrun process per GPU on one node; with nodes > 1,
    ``srun`` starts one torchrun per node (the plugin's MPI route) that meet in a c10d rendezvous on the batch host,
    which SLURM makes the first node of the allocation. The port is derived from the job id so two jobs sharing a
    first node do not collide."""
    res = config["resources"]["pretrain"]
    if res["nodes"] > 1:
        return (f"srun --ntasks {res['nodes']} --kill-on-bad-exit=1 torchrun --nnodes {res['nodes']} "
                f"--nproc_per_node {res['gpu']} --rdzv_backend c10d "
                f"--rdzv_endpoint \"$(hostname):$((29400 + SLURM_JOB_ID % 1000))\" --rdzv_id \"$SLURM_JOB_ID\"")
    if res["gpu"] > 0:
        return f"torchrun --standalone --nproc_per_node {res['gpu']}"
    return "python"


def check_resources(config: Mapping[str, Any]) -> None:
    """Only pretraining spans nodes, and multi-node pretraining runs on GPUs (one torchrun per node)."""
    for group, res in config["resources"].items():
        if res["nodes"] > 1 and group != "pretrain":
            raise ValueError(f"config resources.{group}.nodes={res['nodes']}: only resources.pretrain can span nodes "
                             f"(multi-node torchrun); {group} runs on one node")
    pre = config["resources"]["pretrain"]
    if pre["nodes"] > 1 and pre["gpu"] < 1:
        raise ValueError(f"config resources.pretrain.nodes={pre['nodes']} needs resources.pretrain.gpu >= 1 (GPUs per "
                         f"node): multi-node pretraining runs one torchrun per node over its GPUs")
