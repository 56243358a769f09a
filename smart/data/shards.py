"""Resampling as independent shards: which shard owns a case, and the union of the shard manifests.

Resampling 10,412 CTs in one job is ~10 h on one core, longer than a SLURM job limit, and Snakemake deletes a failed
job's declared outputs. So ``smart resample --shard I --shards N`` handles only the cases whose id hashes to ``I``,
the resampled CTs are not declared outputs (a failed or rerun shard cannot delete what others or earlier runs wrote),
and ``smart resample-merge`` unions the shard manifests into the one manifest pretraining reads
(docs/data_resample.md "Shards").

The owner of a case depends only on its id and ``N``: adding CTs never moves an existing case to another shard, so
every shard skips what it already did (fingerprints) and only new CTs are resampled.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from smart.atomic import write_csv

__all__ = ["shard_of", "check_shard", "journal_path", "merge_shard_tables"]


def check_shard(shard: int, shards: int) -> None:
    """Raise ``ValueError`` unless ``shards >= 1`` and ``0 <= shard < shards``."""
    if not isinstance(shards, int) or shards < 1:
        raise ValueError(f"the shard count must be an integer >= 1, got {shards!r}")
    if not isinstance(shard, int) or not 0 <= shard < shards:
        raise ValueError(f"shard index must be in 0..{shards - 1}, got {shard!r}")


def shard_of(case_id: str, shards: int) -> int:
    """The shard (``0 .. shards-1``) that owns ``case_id``: a stable hash, the same in every process and run."""
    check_shard(0, shards)
    return int.from_bytes(hashlib.sha1(case_id.encode("utf-8")).digest()[:8], "big") % shards


def journal_path(manifest: str | os.PathLike) -> Path:
    """Where a shard records each finished case as it goes (``<manifest>.journal.csv``, next to it).

    Kept after the shard finishes and not a declared Snakemake output, so it survives Snakemake's deletion of a job's
    outputs (failed, forced or outdated job): a rerun reads it and skips every case already done.
    """
    manifest = Path(manifest)
    return manifest.with_name(manifest.name[: -len(".csv")] + ".journal.csv" if manifest.name.endswith(".csv")
                              else manifest.name + ".journal.csv")


def merge_shard_tables(manifests: Sequence[str | os.PathLike], rejected: Sequence[str | os.PathLike],
                       manifest_out: str | os.PathLike, rejected_out: str | os.PathLike) -> dict[str, int]:
    """Write the union of the shard manifests and of the shard rejection tables; return row counts.

    Raises ``ValueError`` naming the file for a missing or unreadable table, a case id in two shards (a shard
    count changed between runs without cleaning up), or a union without any ``ok`` case.
    """
    frames = [_read(p) for p in manifests]
    merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if merged.empty or "case_id" not in merged.columns:
        raise ValueError(f"no shard manifest holds any case ({len(manifests)} shard(s)): nothing was found to "
                         f"resample")
    twice = merged["case_id"][merged["case_id"].duplicated()].unique().tolist()
    if twice:
        raise ValueError(f"case id(s) {twice[:5]} appear in more than one shard manifest; remove stale shard files")
    merged = merged.sort_values("case_id", kind="mergesort").reset_index(drop=True)
    n_ok = int((merged["status"] == "ok").sum())
    if n_ok == 0:
        raise ValueError(f"none of the {len(merged)} case(s) in the shard manifests was resampled (all rejected; "
                         f"see the rejection tables)")
    rejections = [_read(p) for p in rejected]
    rej = pd.concat(rejections, ignore_index=True) if rejections else pd.DataFrame(columns=["file", "reason"])
    write_csv(manifest_out, merged)
    write_csv(rejected_out, rej)
    return {"cases": len(merged), "ok": n_ok, "rejected": len(rej)}


def _read(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: shard table does not exist")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Exception as err:  # pandas raises parser and encoding errors
        raise ValueError(f"{path}: unreadable shard table ({err})") from None
