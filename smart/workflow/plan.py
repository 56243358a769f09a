"""The resolved plan of one workflow invocation: the facts about each planned variant, task and study arm that the
package's config resolution decides (``smart.workflow.resolve.resolve_plan``), computed once and read by every rule
file and by the steps that write results/tables/variants.json and tasks.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Plan:
    """``arch``: variant -> resolved ``model.arch`` (a scratch variant: the architecture ``--encoder none`` builds);
    ``cls_token``: variant -> whether that encoder yields a [CLS] token and an attention map; ``crop_edge``: task ->
    the largest edge of its resolved fine-tuning ``crop_size`` (voxels; LIDC crops are cut at it);
    ``study_sa_arms``: the pretrained study arms whose encoder has a [CLS] attention map (zero-shot needs it);
    ``segmentation_variants``: the variants SwinUNETR is fine-tuned from."""

    arch: dict[str, str]
    cls_token: dict[str, bool]
    crop_edge: dict[str, int]
    study_sa_arms: list[str] = field(default_factory=list)
    segmentation_variants: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
