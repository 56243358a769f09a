"""The pretraining loop (Sec. IV-C) shared by SMART, the baselines and every ablation.

Run folder (``out_dir``): ``config.json`` (resolved config + provenance), ``metrics.jsonl``, ``tb/`` (TensorBoard),
``checkpoint_last.pt`` (every ``train.checkpoint_every`` steps, on SIGTERM/SIGUSR1 and at the end),
``checkpoint_final.pt``, ``encoder.pt`` (``smart.models.encoder_io.export_encoder``) and ``MODEL_CARD.md``
(``smart.train.model_card``) when the loop ends.

Behaviour that downstream tooling relies on:

* **Steps and batches.** ``train.steps`` optimiser steps; the LR (cosine with linear warm-up, per step), the EMA
  momentum and the teacher temperature are functions of the global step and of ``train.steps``. ``max_steps`` stops
  the loop early without changing those schedules. Global batch = ``data.batch_size`` (per process) x world size.
* **Epochs.** ``train.epochs`` / ``optim.warmup_epochs`` / ``loss.warmup_teacher_temp_epochs`` (the ``paper`` preset:
  800 / 80 / 30, Sec. IV-C), when set, become steps of this run: ``ceil(n_CTs / global batch)`` steps per epoch
  (:func:`resolve_epochs`), so the schedule follows the actual data and GPU count; ``config.json`` records both.
* **Exact resume.** Data order, crops, patch drops and masks depend on ``(seed, sample position)`` only
  (``smart.data.views``), and the checkpoint carries model, optimiser, centres and every rank's RNG states, so on CPU
  ``N`` straight steps == ``N/2`` + ``--resume`` + ``N/2`` bit for bit.
* **Safe resume.** ``--resume`` continues ``checkpoint_last.pt`` (else ``checkpoint_final.pt``, to extend a finished
  run) only when its resolved config (all keys but the step budget ``train.steps`` and the bookkeeping keys of
  :data:`RESUME_IGNORED`) and the SHA-256 of its CT list equal this run's; otherwise the run starts fresh and the
  log names the differing keys. A finished run deletes ``checkpoint_last.pt`` (``checkpoint_final.pt`` holds the
  same state), so a forced rerun (``snakemake -f``, changed params: Snakemake deletes the declared outputs first)
  trains again instead of "finishing" the old run.
* **Preemption.** SIGTERM or SIGUSR1 (SLURM ``--signal``) finishes the current step, writes ``checkpoint_last.pt`` and
  raises :class:`TrainingInterrupted`; ``smart pretrain`` exits with code **75** (``EX_TEMPFAIL``: rerun with
  ``--resume``).
* **Non-finite losses.** A step whose loss or gradient norm is not finite is skipped (no optimiser/EMA/centre update)
  and counted; ``train.max_nonfinite`` such steps *in a row* write ``checkpoint_last.pt`` and raise
  :class:`NonFiniteLossError`; ``smart pretrain`` exits with code **3**. The skip is decided on the device
  (``smart.train.optim.guarded_step``, ``apply=`` of the centre and EMA updates); the run checks the count at each
  logging step.
* **No host sync between logging steps** (issue 18). A step that does not log reads no device value on the host:
  sample positions arrive as host ints, the non-finite flag stays on the device, the logged sums accumulate there,
  and the stop flag (SIGTERM/SIGUSR1) is read from the host signal handler — under DDP it is all-reduced with the
  logging interval's one host read, so a stop takes effect at the next logging step (``train.log_every`` steps must
  fit in the warning time of the scheduler's signal). ``tests/train/test_hot_loop.py`` counts the calls.
* **Training health.** Every log record also carries the monitor's figures (:mod:`smart.ssl.health`), computed
  on the logging step only (no cost, no host sync on the others): ``teacher_entropy/<loss>``,
  ``teacher_spread/<loss>``, ``agreement/<loss>`` on the rows each loss uses (AMPD: masked tokens the noisy teacher
  saw; ``.../ampd_dropped`` the masked tokens it dropped), ``mask_body_share``, and ``effective_rank/cls`` /
  ``effective_rank/pooled`` over the student embeddings of the window's applied steps. The collapse rule
  (:class:`smart.ssl.health.CollapseRule`, from the end of the LR warm-up on) prints one warning line per collapsed
  head; with ``train.stop_on_collapse`` it writes ``checkpoint_last.pt`` and raises :class:`CollapseError`;
  ``smart pretrain`` exits with code **4**.
* **Precision and kernels.** bf16 autocast on CUDA, fp32 on CPU (fp16 SSL runs diverge: DINO #58, iBOT #19). On
  CUDA: fused AdamW, TF32 matmuls and convolutions, ``cudnn.benchmark`` (fixed crop sizes); ``train.compile``
  (opt-in) wraps the student encoder in ``torch.compile``. DDP's ``find_unused_parameters`` is set only when the
  method leaves a parameter unused (``SelfDistillation.leaves_parameters_unused``).
"""

from __future__ import annotations

import hashlib
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from smart.config import encoder_config
from smart.data.views import StepSampler, TwoViewDataset, collate_views, derive_seed, read_manifest
from smart.models.factory import build_encoder
from smart.preemption import EXIT_INTERRUPTED, StopFlag, TrainingInterrupted
from smart.provenance import package_versions
from smart.seeding import seed_everything
from smart.ssl.health import CollapseRule, effective_rank
from smart.ssl.sections import PretrainSections, pretrain_sections
from smart.ssl.self_distillation import SelfDistillation
from smart.ssl.stabilisers import Stabilisers, epochs_to_steps, resolve_stabilisers, steps_per_epoch
from smart.train import distributed as dist_utils
from smart.train.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from smart.train.model_card import run_record, write_model_card
from smart.train.optim import build_optimizer, guarded_step, set_lr, set_weight_decay
from smart.run_logging import RunLogger

EXIT_NONFINITE = 3
EXIT_COLLAPSE = 4
_PURPOSE_RANK_RNG = 21
# Keys that do not change what is trained: the step budget (raise it to extend a run) and bookkeeping (the collapse
# rule only decides whether to stop).
RESUME_IGNORED = frozenset({"train.steps", "train.checkpoint_every", "train.log_every", "data.num_workers",
                            "train.compile", "train.stop_on_collapse"})


def run_stabilisers(sections: PretrainSections, n_samples: int, world_size: int = 1) -> Stabilisers:
    """The step schedules of a run on ``n_samples`` CTs and ``world_size`` processes: the ``optim``, ``loss`` and
    ``train`` sections and ``data.batch_size`` handed to ``smart.ssl.stabilisers.resolve_stabilisers``."""
    return resolve_stabilisers(sections.optim, sections.loss, sections.train, sections.data.batch_size, n_samples,
                               world_size)


def build_self_distillation(cfg: dict[str, Any], stabilisers: Stabilisers | None = None) -> SelfDistillation:
    """The student/teacher module of a resolved pretraining config (``smart.config.load_config``): the encoder from
    ``smart.config.encoder_config`` -> ``smart.models.factory.build_encoder``, wrapped in :class:`SelfDistillation`
    with the typed sections it uses (``smart.ssl.sections``) and the run's ``stabilisers`` (``None`` = standalone
    use: resolved as if the data set were one batch, :func:`run_stabilisers` on ``data.batch_size`` CTs).
    Draws its initial weights from torch's global generator (seed it first). ``ValueError`` (one line naming the
    key) for a config whose sections do not type-check."""
    s = pretrain_sections(cfg)
    stabilisers = stabilisers or run_stabilisers(s, n_samples=s.data.batch_size)
    return SelfDistillation(build_encoder(encoder_config(cfg)), masking=s.masking, noisy_teacher=s.noisy_teacher,
                            loss=s.loss, ema=s.ema, seed=s.train.seed, stabilisers=stabilisers)


class NonFiniteLossError(RuntimeError):
    """``train.max_nonfinite`` consecutive non-finite steps; ``checkpoint_last.pt`` holds the last good weights."""

    exit_code = EXIT_NONFINITE


class CollapseError(RuntimeError):
    """The collapse rule fired under ``train.stop_on_collapse``; ``checkpoint_last.pt`` holds the weights then."""

    exit_code = EXIT_COLLAPSE


def window_ranks(window: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``effective_rank/<name>`` of the embeddings ``name`` collected over a logging window (one dict per applied
    step, :attr:`SelfDistillation.last_embeddings`), rows of every step stacked; ``{}`` for an empty window."""
    names = sorted({name for step in window for name in step})
    return {f"effective_rank/{name}": effective_rank(torch.cat([step[name] for step in window if name in step]))
            for name in names}


def _gather_rng(info: dist_utils.DistInfo) -> list[dict[str, Any]]:
    state = capture_rng_state()
    if not info.distributed:
        return [state]
    gathered: list[Any] = [None] * info.world_size
    torch.distributed.all_gather_object(gathered, state)
    return gathered


def resolve_epochs(cfg: dict[str, Any], n_samples: int, global_batch: int) -> tuple[dict[str, Any], int | None]:
    """Turn the ``*_epochs`` keys that are set into steps of this run: one epoch is
    :func:`smart.ssl.stabilisers.steps_per_epoch` (``train.steps_per_epoch``, or ``ceil(n_samples / global_batch)``
    when that is null) and ``n`` epochs are :func:`smart.ssl.stabilisers.epochs_to_steps`.

    Returns ``(config, steps_per_epoch)``: a new config with ``train.steps``, ``optim.warmup_steps`` and
    ``loss.warmup_teacher_temp_steps`` replaced where the matching epoch key is not null, and the steps per epoch
    (``None`` when no epoch key is set). Raises ``ValueError`` for ``n_samples`` or ``global_batch`` < 1.
    """
    if n_samples < 1 or global_batch < 1:
        raise ValueError(f"resolve_epochs needs n_samples >= 1 and global_batch >= 1, got {n_samples}, {global_batch}")
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    pairs = (("train", "epochs", "steps"), ("optim", "warmup_epochs", "warmup_steps"),
             ("loss", "warmup_teacher_temp_epochs", "warmup_teacher_temp_steps"))
    per_epoch = steps_per_epoch(n_samples, global_batch, out["train"].get("steps_per_epoch"))
    used = False
    for section, epochs_key, steps_key in pairs:
        epochs = out[section].get(epochs_key)
        if epochs is not None:
            out[section][steps_key] = epochs_to_steps(float(epochs), per_epoch)
            used = True
    return out, (per_epoch if used else None)


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two resolved configs, ignoring :data:`RESUME_IGNORED`."""
    from smart.config import flatten

    a, b = flatten(saved), flatten(current)
    return sorted(k for k in set(a) | set(b) if k not in RESUME_IGNORED and a.get(k, "<unset>") != b.get(k, "<unset>"))


def manifest_digest(paths: list[str]) -> str:
    """SHA-256 of the ordered CT list a run trains on (its input manifest's usable rows)."""
    return hashlib.sha256("\n".join(map(str, paths)).encode()).hexdigest()


def compile_student(model: SelfDistillation) -> None:
    """``train.compile``: ``torch.compile`` the student encoder in place (``nn.Module.compile``: parameter names,
    state dicts and the EMA pairing are unchanged). The masking and loss code around it stays eager (it draws
    per-sample seeded masks on the host)."""
    model.student["encoder"].compile()


class _Window:
    """Device-side sums of one logging window: the step statistics of applied steps, applied / non-finite counts,
    the longest run of consecutive non-finite steps and the last applied step's EMA momentum. :meth:`pack` puts them
    in one tensor for the logging step's single host read."""

    def __init__(self, device: torch.device, previous: "_Window | None" = None) -> None:
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        zero = torch.zeros((), device=device)
        self.applied, self.bad, self.run_max = zero.clone(), zero.clone(), zero.clone()
        # carried over: a run of non-finite steps may span windows; the momentum is the last *applied* step's
        self.consecutive = zero.clone() if previous is None else previous.consecutive
        self.momentum = zero - 1.0 if previous is None else previous.momentum  # < 0: no applied step yet
        self.steps = 0
        self.last_step = -1
        self.start = time.perf_counter()
        self.embeddings: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []  # (student embeddings, skipped)
        self.health: dict[str, torch.Tensor] = {}

    def add(self, stats: dict[str, torch.Tensor], bad: torch.Tensor, step: int, momentum: float) -> None:
        ok = (~bad).float()
        for key, value in stats.items():
            # torch.where, not value * ok: a skipped step's NaN must not reach the sum
            contribution = torch.where(bad, 0.0, value.detach().float())
            self.sums[key] = self.sums[key] + contribution if key in self.sums else contribution
        self.applied += ok
        self.bad += 1.0 - ok
        self.consecutive = (self.consecutive + 1.0) * (1.0 - ok)
        self.run_max = torch.maximum(self.run_max, self.consecutive)
        self.momentum = torch.where(bad, self.momentum, momentum)
        self.steps += 1
        self.last_step = step

    def add_health(self, embeddings: dict[str, torch.Tensor], bad: torch.Tensor,
                   health: dict[str, torch.Tensor] | None) -> None:
        """Keep the step's student embeddings (for the window's effective rank) and, on a monitored step, its health
        figures (:attr:`SelfDistillation.last_health`). Device tensors only: nothing is read here."""
        self.embeddings.append((embeddings, bad))
        if health is not None:
            self.health = dict(health)

    def _health_figures(self) -> dict[str, torch.Tensor]:
        """The monitored step's figures plus ``effective_rank/<name>`` over the embeddings of the window's applied
        steps (:func:`window_ranks`). Runs at the logging step, where reading the skip flags is allowed."""
        skipped = torch.stack([bad for _, bad in self.embeddings]).tolist() if self.embeddings else []  # one read
        applied = [emb for (emb, _), bad in zip(self.embeddings, skipped) if not bad]
        return {**self.health, **window_ranks(applied)} if self.health else {}

    def pack(self, stop_flag: float) -> torch.Tensor:
        self.keys = sorted(self.sums)
        figures = self._health_figures()
        self.health_keys = sorted(figures)
        head = torch.stack([torch.full((), stop_flag, device=self.device), self.applied, self.bad, self.run_max,
                            self.consecutive, self.momentum])
        return torch.cat([head, *[self.sums[k].reshape(1) for k in self.keys],
                          *[figures[k].detach().float().reshape(1) for k in self.health_keys]])

    def record(self, values: list[float], world_size: int, teacher_temps) -> tuple[dict[str, Any], int]:
        """The metrics record of the window from :meth:`pack`'s values (stop flag removed; sums over ranks when
        all-reduced, so counts are divided by ``world_size`` and losses become global-batch means)."""
        applied, bad, run_max, consecutive, momentum = (v / world_size for v in values[:5])
        sums = dict(zip(self.keys, values[5:5 + len(self.keys)]))
        # rank-local health figures, averaged over ranks (every rank logs at the same steps with the same keys)
        health = {k: v / world_size for k, v in zip(self.health_keys, values[5 + len(self.keys):])}
        elapsed = time.perf_counter() - self.start
        record: dict[str, Any] = {"momentum": momentum if momentum >= 0 else None}
        if applied > 0:
            record.update({k: s / world_size / applied for k, s in sums.items()})
        record.update(health)
        record.update(teacher_temps(self.last_step))
        record.update({"time_per_step": elapsed / max(self.steps, 1), "applied_steps": int(round(applied)),
                       "_nonfinite": int(round(bad))})
        return record, int(round(max(run_max, consecutive)))


class _Trainer:
    """Holds the loop state; one instance per :func:`pretrain` call."""

    def __init__(self, cfg: dict[str, Any], manifest: str | Path, out_dir: str | Path, max_steps: int | None,
                 resume: bool, run_info: dict[str, Any] | None = None) -> None:
        if max_steps is not None and max_steps <= 0:
            raise ValueError(f"max_steps must be > 0, got {max_steps}")
        self.out_dir = Path(out_dir)
        # The loop reads its settings from the typed sections (smart.ssl.sections); the dict itself is only recorded
        # (config.json, checkpoints, the resume check, the model card). A mistyped key fails here, before any IO.
        data = pretrain_sections(cfg).data
        # missing files fail here, before any model is built
        self.paths = read_manifest(manifest, group=data.group)
        self.manifest_sha256 = manifest_digest(self.paths)
        self.info = dist_utils.init_distributed()
        cfg, self.steps_per_epoch = resolve_epochs(cfg, len(self.paths), data.batch_size * self.info.world_size)
        self.cfg = cfg
        self.sections = sections = pretrain_sections(cfg)  # with the epoch keys turned into steps of this run
        self.total = sections.train.steps
        self.stop_at = self.total if max_steps is None else min(self.total, int(max_steps))
        self.device = self.info.device
        # the model card's facts (smart.train.model_card); a resumed run keeps the record of its start
        self.run_facts = run_record(manifest, len(self.paths), self.info.world_size, config=cfg, **(run_info or {}))
        self.logger = RunLogger(self.out_dir, enabled=self.info.is_main)
        seed = sections.train.seed

        seed_everything(seed)  # identical initial weights on every rank
        if self.device.type == "cuda":
            # TF32 tensor cores for fp32 matmuls/convs (the parts autocast leaves in fp32); fixed crop sizes, so
            # cudnn's autotuner pays off after the first step.
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        self.stab = run_stabilisers(sections, len(self.paths), self.info.world_size)
        self.model = build_self_distillation(cfg, self.stab).to(self.device)
        self.optimizer = build_optimizer(self.model.student_parameters(), sections.optim.lr,
                                         sections.optim.weight_decay, self.device)
        self.params = [p for _, p in self.model.student_parameters()]
        self.step = 0
        self.nonfinite = 0
        self.window: _Window | None = None
        ckpt = self._resumable() if resume else None
        if ckpt is not None:
            self._load(ckpt)
        else:
            # Per-rank stream for drop path: ranks must not share dropout patterns.
            seed_everything(derive_seed(seed, _PURPOSE_RANK_RNG, self.info.rank))
            self.logger.truncate_after(0)  # a fresh run's metrics never continue an older run's file
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext())
        self.clip = sections.optim.clip_grad
        self.log_every = sections.train.log_every  # the monitored steps are the logged ones
        if sections.train.compile:
            compile_student(self.model)
        self.ddp = self.model
        if self.info.distributed:
            from torch.nn.parallel import DistributedDataParallel

            # Unused parameters exist only in some ablations (e.g. the stage-4 layers when GITD is off); the flag
            # costs a graph walk per step, so it follows the method. Centres are all-reduced by Center.update, so
            # buffers need no broadcast.
            self.ddp = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda"
                                               else None, find_unused_parameters=self.model.leaves_parameters_unused(),
                                               broadcast_buffers=False)

    # ---- checkpoints -----------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        # a checkpoint between logging steps also counts the window's non-finite steps not logged yet (the save
        # reads the device anyway)
        pending = int(self.window.bad.item()) if self.window is not None else 0
        return {"step": self.step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": _gather_rng(self.info), "world_size": self.info.world_size, "nonfinite": self.nonfinite + pending,
                "config": self.cfg, "method": self.cfg.get("method", ""), "versions": package_versions(),
                "run": self.run_facts, "manifest_sha256": self.manifest_sha256}

    def save(self, name: str = "checkpoint_last.pt") -> None:
        state = self._state()  # collective (RNG gather): every rank takes part
        if self.info.is_main:
            save_checkpoint(self.out_dir / name, state)
        dist_utils.barrier()

    def _resumable(self) -> Path | None:
        """The checkpoint ``--resume`` may continue, or ``None`` (then the run starts fresh, saying why on stderr)."""
        for name in ("checkpoint_last.pt", "checkpoint_final.pt"):
            path = self.out_dir / name
            if not path.is_file():
                continue
            state = load_checkpoint(path)
            why = []
            differing = config_differences(state.get("config") or {}, self.cfg)
            if differing:
                why.append("config keys differ: " + ", ".join(differing))
            if state.get("manifest_sha256") != self.manifest_sha256:
                why.append("the input manifest's CT list differs")
            if not why:
                return path
            if self.info.is_main:
                print(f"smart pretrain: not resuming {path} ({'; '.join(why)}): starting fresh", file=sys.stderr)
            return None
        return None

    def _load(self, path: Path) -> None:
        state = load_checkpoint(path, map_location=self.device)
        if self.info.is_main:
            print(f"smart pretrain: resuming {path} at step {int(state['step'])}", file=sys.stderr)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.nonfinite = int(state.get("nonfinite", 0))
        self.run_facts = state.get("run") or self.run_facts
        rngs = state["rng"]
        if len(rngs) == self.info.world_size:
            restore_rng_state(rngs[self.info.rank])
        else:  # world size changed: still deterministic, no longer identical to an uninterrupted run
            seed_everything(derive_seed(self.sections.train.seed, _PURPOSE_RANK_RNG, self.info.rank, self.step))
        self.logger.truncate_after(self.step)

    # ---- loop ------------------------------------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        data = self.sections.data
        dataset = TwoViewDataset(self.paths, data.crop_size, seed=self.sections.train.seed, cache=data.cache,
                                 num_workers=data.num_workers, view_offset=data.view_offset)
        sampler = StepSampler(data.batch_size, self.info.world_size, self.info.rank, self.step, self.stop_at)
        workers = data.num_workers
        # A private generator: DataLoader would otherwise draw its worker base seed from the global torch RNG, which
        # shifts drop-path randomness between a straight and a resumed run.
        return DataLoader(dataset, batch_size=data.batch_size, sampler=sampler, collate_fn=collate_views,
                          num_workers=workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=False, generator=torch.Generator().manual_seed(0),
                          prefetch_factor=2 if workers > 0 else None)

    def train_step(self, batch: dict[str, Any], window: "_Window") -> None:
        """One optimiser step on ``batch`` (``collate_views``), accumulating its statistics into ``window``. Reads no
        device value on the host: a non-finite step is skipped on the device (module docstring)."""
        step = self.step
        set_lr(self.optimizer, self.stab.lr_at(step))
        set_weight_decay(self.optimizer, self.stab.weight_decay_at(step))
        u = batch["u"].to(self.device, non_blocking=True)
        v = batch["v"].to(self.device, non_blocking=True)
        # the health figures only on a step that logs for sure (a stop or abort log carries none): no cost elsewhere
        monitor = (step + 1) % self.log_every == 0 or step + 1 == self.stop_at
        with self.autocast:
            loss, stats = self.ddp(u, v, batch["position"], step, monitor=monitor)
        # Always run backward (even on NaN) so every DDP rank takes part in the same gradient all-reduce.
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.params, self.clip if self.clip > 0 else float("inf"))
        bad = ~torch.isfinite(loss.detach()) | ~torch.isfinite(gnorm)
        if self.info.distributed:  # every rank skips together; an enqueued collective, not a host read
            bad = dist_utils.all_reduce_sum_(bad.float()) > 0
        if self.stab.last_layer_frozen(step):
            for p in self.model.prototype_parameters():
                p.grad = None  # AdamW skips it: no update, no decay (DINO's cancel_gradients_last_layer)
        guarded_step(self.optimizer, bad)
        self.optimizer.zero_grad(set_to_none=True)
        self.model.commit_centers(apply=~bad)
        momentum = self.model.update_teacher(step, self.total, apply=~bad)
        window.add(stats, bad, step, momentum)
        window.add_health(self.model.last_embeddings, bad, self.model.last_health if monitor else None)
        self.step = step + 1

    def _log(self, stop: StopFlag) -> tuple[dict[str, Any], bool, int]:
        """The logging step's one host read: the window's sums, its non-finite counts and (under DDP) the stop flag;
        starts the next window. Returns ``(record, stopping, consecutive non-finite steps)``."""
        window = self.window
        packed = window.pack(float(stop.signum is not None))
        if self.info.distributed:
            # the stop flag is summed over ranks; the rest is averaged below (every rank holds the same counts)
            packed = dist_utils.all_reduce_sum_(packed)
        values = packed.tolist()
        stopping = values[0] > 0
        record, consecutive = window.record(values[1:], self.info.world_size, self.model.teacher_temps)
        self.nonfinite += int(record.pop("_nonfinite"))
        record = {"step": self.step, "lr": self.stab.lr_at(self.step - 1), **record,
                  "weight_decay": self.stab.weight_decay_at(self.step - 1), "nonfinite": self.nonfinite}
        self.window = _Window(self.device, window)
        return record, stopping, consecutive

    def _check_collapse(self, collapse: CollapseRule, record: dict[str, Any]) -> None:
        """Feed a log record to the collapse rule: one warning line per collapsed head; under
        ``train.stop_on_collapse`` write ``checkpoint_last.pt`` and raise :class:`CollapseError`."""
        fired = collapse.update(record)
        for message in fired.values():
            if self.info.is_main:
                print(f"smart pretrain: WARNING collapse: {message}", file=sys.stderr)
        if fired and self.sections.train.stop_on_collapse:
            self.save()
            raise CollapseError(
                f"train.stop_on_collapse: {'; '.join(fired.values())}. checkpoint_last.pt in {self.out_dir} holds "
                f"the weights at step {self.step}; see docs/ARCHITECTURE.md 'Training health' for the thresholds and "
                f"the remedies")

    def run(self) -> dict[str, Any]:
        cfg, tcfg = self.cfg, self.sections.train
        self.logger.write_config(cfg, {"world_size": self.info.world_size,
                                       "global_batch": self.sections.data.batch_size * self.info.world_size,
                                       "n_cts": len(self.paths), "steps_per_epoch": self.steps_per_epoch,
                                       "manifest_sha256": self.manifest_sha256})
        loader = self._loader()
        max_bad = tcfg.max_nonfinite
        log_every, ckpt_every = self.log_every, tcfg.checkpoint_every
        self.window = _Window(self.device)
        collapse = CollapseRule(self.sections.loss.out_dim, start_step=self.stab.warmup_steps)
        last_record: dict[str, Any] = {}
        bar = self.logger.progress(self.stop_at, initial=self.step)
        with StopFlag() as stop:
            for batch in loader:
                self.train_step(batch, self.window)
                shown: dict[str, Any] = {}  # the bar shows the logged loss: reading each step's would sync
                consecutive = 0
                # single process: the signal handler's host flag is free to read every step; under DDP every rank
                # must stop at the same step, so the flag travels with the logging step's all-reduce
                stopping = stop.stopping and not self.info.distributed
                if self.step % log_every == 0 or self.step == self.stop_at or stopping:
                    last_record, stopping, consecutive = self._log(stop)
                    self.logger.log(last_record)
                    shown = {"loss": last_record["loss/total"]} if "loss/total" in last_record else {}
                    self._check_collapse(collapse, last_record)
                bar.update(1, samples=batch["u"].shape[0] * self.info.world_size, **shown)
                if consecutive >= max_bad:
                    self.save()
                    raise NonFiniteLossError(
                            f"{consecutive} consecutive non-finite steps (train.max_nonfinite={max_bad}) at step "
                            f"{self.step}; {self.nonfinite} non-finite steps in total. Check the input CTs (NaN/inf "
                            f"voxels) and the learning rate. checkpoint_last.pt in {self.out_dir} holds the last good "
                            f"weights.")
                if stopping:
                    self.save()
                    raise TrainingInterrupted(f"stop signal received at step {self.step}; wrote "
                                              f"{self.out_dir / 'checkpoint_last.pt'} (rerun with --resume)")
                if self.step % ckpt_every == 0 and self.step < self.stop_at:
                    self.save()
        bar.close()
        return self.finish(last_record)

    def finish(self, last_record: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write ``checkpoint_last.pt``, ``checkpoint_final.pt`` and ``encoder.pt`` for the current step. Also used
        when ``--resume`` finds the run already at its last step (e.g. killed between the last two writes)."""
        self.save()
        self.save("checkpoint_final.pt")
        if self.info.is_main:
            from smart.models.encoder_io import export_encoder

            encoder = self.model.student["encoder"]
            export_encoder(encoder, self.out_dir / "encoder.pt", model_config=encoder.model_config,
                           method=str(self.cfg.get("method", "")), step=self.step)
            write_model_card(self.out_dir / "encoder.pt", self.cfg, self.step, self.run_facts)
            # checkpoint_final.pt holds the same state; without checkpoint_last.pt a forced rerun trains again.
            (self.out_dir / "checkpoint_last.pt").unlink(missing_ok=True)
        dist_utils.barrier()
        self.logger.close()
        return {"step": self.step, "nonfinite": self.nonfinite, "last": last_record or {},
                "world_size": self.info.world_size, "out_dir": str(self.out_dir)}


def pretrain(cfg: dict[str, Any], manifest: str | Path, out_dir: str | Path, max_steps: int | None = None,
             resume: bool = False, run_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pretrain per ``cfg`` (``smart.config.load_config``) on the ``status == ok`` CTs of ``manifest``.

    Returns ``{"step", "nonfinite", "last" (the last metrics record), "world_size", "out_dir"}``. Raises
    :class:`TrainingInterrupted` (exit 75) on SIGTERM/SIGUSR1, :class:`NonFiniteLossError` (exit 3),
    :class:`CollapseError` (exit 4, only with ``train.stop_on_collapse``) and
    ``ValueError`` for bad inputs (before training starts). With ``resume`` and an existing
    ``out_dir/checkpoint_last.pt`` training continues from it; without one it starts fresh. ``run_info`` =
    ``{"preset", "config_yaml", "overrides"}`` as given on the command line, for ``MODEL_CARD.md``.
    """
    trainer = _Trainer(cfg, manifest, out_dir, max_steps, resume, run_info)
    try:
        if trainer.step >= trainer.stop_at:
            return trainer.finish()
        return trainer.run()
    finally:
        trainer.logger.close()


__all__ = ["EXIT_COLLAPSE", "EXIT_INTERRUPTED", "EXIT_NONFINITE", "RESUME_IGNORED", "CollapseError",
           "NonFiniteLossError", "TrainingInterrupted", "config_differences", "manifest_digest", "pretrain",
           "resolve_epochs", "window_ranks"]
