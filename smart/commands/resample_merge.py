"""``smart resample-merge``: the union of ``smart resample --shard I --shards N`` manifests -> one manifest + rejections.

Exit status 0 on success; 1, with one line naming the file or the reason, for a missing/unreadable shard table, a
case id in two shards, or a union without any usable CT (smart.data.shards.merge_shard_tables).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shard-manifests", nargs="+", required=True, type=Path, metavar="CSV",
                        help="the shards' manifests (smart resample --manifest)")
    parser.add_argument("--shard-rejected", nargs="+", required=True, type=Path, metavar="CSV",
                        help="the shards' rejection tables (smart resample --rejected)")
    parser.add_argument("--manifest", required=True, type=Path, help="merged manifest CSV to write")
    parser.add_argument("--rejected", required=True, type=Path, help="merged rejections CSV to write")


def main(args: argparse.Namespace) -> int:
    from smart.data.shards import merge_shard_tables

    try:
        counts = merge_shard_tables(args.shard_manifests, args.shard_rejected, args.manifest, args.rejected)
    except ValueError as err:
        print(f"smart resample-merge: {err}", file=sys.stderr)
        return 1
    print(f"smart resample-merge: {counts['ok']} of {counts['cases']} case(s) ok, {counts['rejected']} rejection(s) "
          f"from {len(args.shard_manifests)} shard(s) -> {args.manifest}", file=sys.stderr)
    return 0
