"""``smart bench ddp``: data-parallel scaling of the real pretraining step (:func:`smart.bench.pretrain.smart_step_fn`:
forward, backward through ``DistributedDataParallel`` with the trainer's arguments, clip, the trainer's per-step flag
all-reduce, optimizer, centre all-reduce, EMA) with 1 and N processes at the same per-process batch.

Processes are started with ``torch.multiprocessing.spawn`` and join a process group through
:func:`smart.train.distributed.init_distributed` exactly as under ``torchrun`` (NCCL on GPUs, one per rank; gloo on
CPU). Every rank gets the same number of threads, ``cores // max(worlds)`` by default, so world N uses N times the
cores of world 1, as N GPUs would (giving world 1 all the cores instead would measure intra-op threading, and on an
oversubscribed machine OpenMP spin-waiting makes 2 threads *slower* than 1 — see BENCHMARKS.md). Scaling efficiency =
``samples/s(N) / (N * samples/s(1))``. World sizes are run alternately for ``rounds`` rounds (medians), so slow phases
of a shared machine hit every world size.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, method: str, preset: str, steps: int, warmup: int, threads: int,
            overrides: list[str], result_dir: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(threads)
    from smart.bench.pretrain import smart_step_fn
    from smart.bench.timing import synchronize
    from smart.train import distributed as dist_utils

    info = dist_utils.init_distributed()
    try:
        step, meta = smart_step_fn(method, preset, info.device, overrides, rank=rank)
        for _ in range(warmup):
            step()
        synchronize(info.device)
        dist_utils.barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(info.device)
        dist_utils.barrier()
        elapsed = time.perf_counter() - t0
        if meta["world_size"] != world:
            raise RuntimeError(f"rank {rank}: expected world size {world}, the step saw {meta['world_size']}")
        from smart.atomic import write_text

        write_text(Path(result_dir) / f"rank{rank}.json",
                   json.dumps({"seconds": elapsed, "steps": steps, "batch": meta["batch"], "crop": meta["crop"]}))
    finally:
        dist_utils.cleanup()


def run_world(world: int, method: str = "smart", preset: str = "tiny", steps: int = 5, warmup: int = 2,
              threads: int | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Time ``steps`` steps on ``world`` spawned ranks; returns the slowest rank's time and global samples/s."""
    if world < 1:
        raise ValueError(f"world size must be >= 1, got {world}")
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps must be >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    cuda = torch.cuda.is_available()
    if cuda and world > torch.cuda.device_count():
        raise ValueError(f"world size {world} > {torch.cuda.device_count()} visible GPUs")
    threads = threads or max(1, (os.cpu_count() or 1) // world)
    with tempfile.TemporaryDirectory(prefix="smart-bench-ddp-") as tmp:
        torch.multiprocessing.spawn(_worker, args=(world, _free_port(), method, preset, steps, warmup, threads,
                                                   list(overrides or []), tmp), nprocs=world, join=True)
        ranks = [json.loads((Path(tmp) / f"rank{r}.json").read_text()) for r in range(world)]
    seconds = max(r["seconds"] for r in ranks)  # the step is synchronous: the slowest rank sets the pace
    batch = ranks[0]["batch"]
    return {"world_size": world, "threads_per_rank": threads, "backend": "nccl" if cuda else "gloo", "steps": steps,
            "batch_per_rank": batch, "crop": ranks[0]["crop"], "seconds": seconds, "step_s": seconds / steps,
            "samples_per_s": world * batch * steps / seconds}


def run_ddp_bench(method: str = "smart", preset: str = "tiny", worlds: tuple[int, ...] = (1, 2), steps: int = 5,
                  warmup: int = 2, rounds: int = 1, overrides: list[str] | None = None, threads: int | None = None
                  ) -> dict[str, Any]:
    if 1 not in worlds:
        raise ValueError(f"world sizes must include 1 (the scaling baseline), got {worlds}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if threads is None:
        threads = 1 if torch.cuda.is_available() else max(1, (os.cpu_count() or 1) // max(worlds))
    runs: dict[int, list[dict[str, Any]]] = {w: [] for w in worlds}
    for _ in range(rounds):
        for w in worlds:
            runs[w].append(run_world(w, method, preset, steps, warmup, threads=threads, overrides=overrides))
    results = {}
    base = statistics.median(r["samples_per_s"] for r in runs[1])
    for w, rs in runs.items():
        sps = statistics.median(r["samples_per_s"] for r in rs)
        results[str(w)] = {**{k: v for k, v in rs[0].items() if k not in ("seconds", "step_s", "samples_per_s")},
                           "samples_per_s": sps, "samples_per_s_runs": [r["samples_per_s"] for r in rs],
                           "step_s": statistics.median(r["step_s"] for r in rs),
                           "speedup_vs_1": sps / base, "scaling_efficiency": sps / (w * base)}
    return {"method": method, "preset": preset, "device": "cuda" if torch.cuda.is_available() else "cpu",
            "cpu_count": os.cpu_count(), "threads_per_rank": threads, "load_avg": list(os.getloadavg()),
            "torch": torch.__version__, "rounds": rounds, "results": results}
