"""Values the user must still set: ``REPLACE_ME`` marks a data path config/paper.yaml cannot ship (and the SLURM
profile's partition/account). Every unset value the planned targets need is reported at once, naming the config
file(s) actually given; a value only one target family reads (``segmentation.*``) is asked for only when that
family is planned."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

PLACEHOLDER = "REPLACE_ME"

# Top-level config sections read only by the targets that plan segmentation (rules/segmentation.smk).
SEGMENTATION_SECTION = "segmentation"
# Targets (rule names and path prefixes) that build segmentation results.
SEGMENTATION_TARGETS = ("segmentation",)
SEGMENTATION_PATHS = ("results/segmentation/", "results/tables/segmentation")


def find_placeholders(node: Any, where: str = "") -> list[tuple[str, str]]:
    """Every ``(dotted key, value)`` whose string value holds :data:`PLACEHOLDER`, in config order; list items as
    ``key[i]``."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found += find_placeholders(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += find_placeholders(value, f"{where}[{i}]")
    elif isinstance(node, str) and PLACEHOLDER in node:
        found.append((where, node))
    return found


def plans_segmentation(config: dict[str, Any], targets: Sequence[str] | None) -> bool:
    """Whether the requested ``targets`` build segmentation results. No targets = the default target ``all``,
    which holds segmentation only with ``segmentation.enabled``; ``None`` = targets unknown (every family)."""
    if targets is None:
        return True
    if not targets or "all" in targets:
        if config[SEGMENTATION_SECTION]["enabled"]:
            return True
    return any(t in SEGMENTATION_TARGETS or str(t).lstrip("./").startswith(SEGMENTATION_PATHS) for t in targets)


def needed_placeholders(config: dict[str, Any], targets: Sequence[str] | None) -> list[tuple[str, str]]:
    """The placeholders the planned targets read: all of them, less ``segmentation.*`` when no target plans
    segmentation."""
    skip_segmentation = not plans_segmentation(config, targets)
    return [(key, value) for key, value in find_placeholders(config)
            if not (skip_segmentation and key.split(".")[0].split("[")[0] == SEGMENTATION_SECTION)]


def placeholder_report(config: dict[str, Any], config_files: Iterable[str], targets: Sequence[str] | None
                       ) -> str | None:
    """``None`` when nothing needed is unset; else one line naming the config file(s), then one line per value:
    ``config <key> = '<value>' is a placeholder``."""
    found = needed_placeholders(config, targets)
    if not found:
        return None
    files = ", ".join(map(str, config_files)) or "the config"
    lines = [f"{files}: {len(found)} value(s) still hold the placeholder {PLACEHOLDER}; set each to your copy of the "
             f"data (the lines marked >>> REPLACE <<<) and plan again:"]
    lines += [f"  config {key} = {value!r} is a placeholder" for key, value in found]
    return "\n".join(lines)


def placeholder_resources(jobs: Iterable[Any]) -> str | None:
    """The first ``resource name=value of rule R`` among ``jobs`` (Snakemake jobs: ``.resources``, ``.rule.name``)
    whose value still holds :data:`PLACEHOLDER` (the SLURM profile's partition or account), as the error line;
    ``None`` when there is none."""
    for job in jobs:
        for name, value in dict(job.resources).items():
            if isinstance(value, str) and PLACEHOLDER in value:
                return (f"resource {name}={value!r} of rule {job.rule.name} is a placeholder; set it in the SLURM "
                        f"profile (slurm/config.yaml, docs/workflow.md 'SLURM') or with --default-resources / "
                        f"--set-resources; nothing was submitted")
    return None
