"""The downstream configs as typed, frozen sections: fine-tuning (:class:`FinetuneSection`), the linear probe
(:class:`ProbeSection`) and segmentation fine-tuning (:class:`SegmentationSection`) read their settings from these,
not from the whole config dict (docs/ARCHITECTURE.md "Configuration").

The resolved config (:func:`smart.downstream.protocol.load_downstream_config`) stays the flat JSON dict that
``metrics.json`` records, provenance hashes and a fine-tuning checkpoint compares on ``--resume``;
:func:`finetune_section` / :func:`probe_section` type it in one call each. The classes declare no defaults (each
default stays written once, in ``protocol.DEFAULTS``); together with :data:`SCRATCH_KEYS` their fields are exactly
the keys of ``protocol.TYPES``, with the same tags (``tests/downstream/test_sections.py``). Types are checked on
construction by ``smart.overlay.Section``, in the one error format (``downstream config key 'lr': expected a number,
got 'fast'``); ranges and cross-key rules stay in ``protocol._validate``, which ``load_downstream_config`` runs.

Segmentation likewise: :func:`segmentation_section` types the dict of
:func:`smart.downstream.segmentation.load_segmentation_config` (which ``config.json``, ``metrics.json``, provenance and
``--resume`` keep); the fields plus :data:`NETWORK_KEYS` are exactly the keys of ``segmentation.TYPES``
(``tests/downstream/test_sections.py``), errors read ``segmentation config key ...``. The table itself stays in
``smart.downstream.segmentation`` (it imports this module, not the reverse, so typing a config needs no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from smart.downstream.protocol import DEFAULTS
from smart.overlay import Section

__all__ = ["FinetuneSection", "NETWORK_KEYS", "ProbeSection", "SCRATCH_KEYS", "SegmentationSection",
           "finetune_section", "probe_section", "segmentation_section"]

# The encoder of ``--encoder none``: read from the resolved mapping by ``protocol.scratch_config``, which the
# workflow's check before any job also calls with the dict (smart.workflow.resolve), so they are no section field.
SCRATCH_KEYS = ("scratch_method", "scratch_preset", "scratch_model")
# The segmentation network: the pretraining ``model.*`` table at ``model_preset`` plus ``model`` overrides, read from
# the resolved mapping by ``segmentation.model_config`` (which the workflow's check before any job also calls with
# the dict, smart.workflow.resolve), so they are no section field either.
NETWORK_KEYS = ("model_preset", "model")


class _Downstream(Section):
    """A part of the flat downstream config: keys named bare, errors say ``downstream config key``."""

    NAME: ClassVar[str] = ""
    WHAT: ClassVar[str] = "downstream"
    RESOLVER: ClassVar[str] = "smart.downstream.protocol.load_downstream_config"


@dataclass(frozen=True)
class FinetuneSection(_Downstream):
    """What supervised fine-tuning reads (``smart.downstream.finetune``; paper Sec. IV-C).

    Attributes:
        epochs: epochs to train (1,000 on LIDC in the paper); ``patience`` may stop earlier.
        batch_size: the effective batch of one optimiser step (40); ``micro_batch_size`` samples (null = all) pass
            through the model at a time, their gradients accumulated.
        lr, weight_decay: AdamW, constant learning rate (2e-4).
        seed: seeds the inner split, the fraction draw, the weights' init of a scratch encoder and every epoch's
            streams.
        crop_size: input crop edge lengths in voxels ``(D, H, W)``.
        augment: random flips / intensity jitter on training crops.
        class_balance: inverse-frequency class weights in the loss.
        selection: ``best_val_auc`` (the inner-validation AUC picks the epoch) or ``last``.
        inner_val_fraction: share of the training part held out (whole patients) to make every choice on.
        patience: null, or stop after N epochs without a higher inner-validation AUC.
        num_workers: DataLoader worker processes (0 = the training process).
        activation_checkpointing: recompute each Swin / ViT block in backward.
        precision: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``bf16`` or ``fp32``.
        device: ``auto`` (CUDA when available) or a torch device name.
        save_encoder: also write the selected encoder (attention maps after fine-tuning, Fig. 4).
        checkpoint_every: epochs between ``checkpoint_last.pt`` writes.
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int
    crop_size: tuple[int, int, int]
    augment: bool
    class_balance: bool
    selection: str
    inner_val_fraction: float
    patience: int | None
    num_workers: int
    micro_batch_size: int | None
    activation_checkpointing: bool
    precision: str
    device: str
    save_encoder: bool
    checkpoint_every: int

    @property
    def micro_batch(self) -> int:
        """Samples per forward/backward pass: ``micro_batch_size``, or ``batch_size`` when it is null."""
        return self.batch_size if self.micro_batch_size is None else self.micro_batch_size


@dataclass(frozen=True)
class ProbeSection(_Downstream):
    """What the linear probe reads (``smart.downstream.linear_probe``; paper Tables II/III "Linear Probing").

    Attributes:
        seed: seeds the inner split, the fraction draw and the logistic regression.
        crop_size: crop edge lengths ``(D, H, W)`` the features are extracted from (no augmentation).
        class_balance: ``class_weight="balanced"`` in the logistic regression.
        inner_val_fraction: share of the training part held out (whole patients) to choose C on.
        device: ``auto`` (CUDA when available) or a torch device name, for feature extraction.
        probe_C: the inverse L2 strengths tried; the inner-validation AUC chooses.
        probe_max_iter: lbfgs iterations per fit.
        feature_batch_size: crops per feature-extraction batch.
    """

    seed: int
    crop_size: tuple[int, int, int]
    class_balance: bool
    inner_val_fraction: float
    device: str
    probe_C: tuple[float, ...]
    probe_max_iter: int
    feature_batch_size: int


def finetune_section(cfg: Mapping[str, Any]) -> FinetuneSection:
    """The fine-tuning section of a resolved downstream config; ``ValueError`` (one line naming the key) for a key
    outside ``protocol.DEFAULTS``, a missing key or a wrongly typed value."""
    return FinetuneSection.from_config(cfg, shared=DEFAULTS)


def probe_section(cfg: Mapping[str, Any]) -> ProbeSection:
    """The linear probe's section of a resolved downstream config (errors as :func:`finetune_section`)."""
    return ProbeSection.from_config(cfg, shared=DEFAULTS)


@dataclass(frozen=True)
class SegmentationSection(Section):
    """What segmentation fine-tuning reads (``smart.downstream.segmentation``; MONAI's BTCV SwinUNETR recipe).

    Attributes:
        structures: label value ``i + 1`` is ``structures[i]``; 0 is background. Distinct names (checked by
            ``load_segmentation_config``).
        steps: AdamW steps to train.
        batch_size: random crops per step.
        crop_size: crop edge lengths in voxels ``(D, H, W)``, also the sliding window; multiples of 32, >= 64.
        lr, weight_decay: AdamW, constant learning rate (MONAI's BTCV tutorial: 1e-4, 1e-5).
        pos_fraction: probability that a crop is centred on a labelled voxel (else anywhere).
        val_every: steps between validation Dice evaluations (and the last step).
        checkpoint_every: steps between ``checkpoint_last.pt`` writes.
        log_every: steps per logged mean loss.
        sw_batch_size: windows per ``sliding_window_inference`` batch.
        overlap: sliding-window overlap in [0, 1).
        spacing: resampling grid in mm (the pretraining grid); null = the files' own grids.
        dropout_path_rate: SwinUNETR stochastic depth.
        seed: seeds the network's init and every step's crops.
        device: ``auto`` (CUDA when available) or a torch device name.
    """

    NAME: ClassVar[str] = ""
    WHAT: ClassVar[str] = "segmentation"
    RESOLVER: ClassVar[str] = "smart.downstream.segmentation.load_segmentation_config"

    structures: tuple[str, ...]
    steps: int
    batch_size: int
    crop_size: tuple[int, int, int]
    lr: float
    weight_decay: float
    pos_fraction: float
    val_every: int
    checkpoint_every: int
    log_every: int
    sw_batch_size: int
    overlap: float
    spacing: float | None
    dropout_path_rate: float
    seed: int
    device: str


def segmentation_section(cfg: Mapping[str, Any]) -> SegmentationSection:
    """The section of a resolved segmentation config; ``ValueError`` (one line naming the key) for a key outside
    the segmentation table, a missing key or a wrongly typed value."""
    return SegmentationSection.from_config(cfg, shared=NETWORK_KEYS)
