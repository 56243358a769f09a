"""The resolved plan of one workflow invocation: the facts about each planned variant, task and study arm that the
package's config resolution decides (``smart.workflow.resolve.resolve_plan``), computed once, read by every rule file
and written once as ``results/plan.json`` (the ``plan_json`` rule) for the steps that read it (``smart tables``,
``smart segmentation-table``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# What a variant's entry of :attr:`Plan.variants` holds (docs/ARCHITECTURE.md "Result paths").
VARIANT_KEYS = ("method", "set", "label", "tables", "sa", "heads")


@dataclass(frozen=True)
class Plan:
    """``arch``: variant -> resolved ``model.arch`` (a scratch variant: the architecture ``--encoder none`` builds);
    ``cls_token``: variant -> whether that encoder yields a [CLS] token and an attention map; ``crop_edge``: task ->
    the largest edge of its resolved fine-tuning ``crop_size`` (voxels; LIDC crops are cut at it);
    ``study_sa_arms``: the pretrained study arms whose encoder has a [CLS] attention map (zero-shot needs it);
    ``segmentation_variants``: the variants SwinUNETR is fine-tuned from;
    ``variants``: variant -> ``{method, set, label, tables, sa, heads}`` with every default explicit (``heads``: the
    fine-tuning heads actually run), in name order (the tables' row order);
    ``tasks``: task -> ``{label, title}`` (config order); ``table_tasks``: table numeral -> the task filling it."""

    arch: dict[str, str]
    cls_token: dict[str, bool]
    crop_edge: dict[str, int]
    study_sa_arms: list[str] = field(default_factory=list)
    segmentation_variants: list[str] = field(default_factory=list)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, str]] = field(default_factory=dict)
    table_tasks: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Plan:
        """The plan ``data`` (as :meth:`to_dict` wrote it) back; ``ValueError`` naming ``where`` and the field for a
        missing or unknown field, a field of the wrong type, a variant entry without :data:`VARIANT_KEYS` or a table
        whose task is not in ``tasks``."""
        names = {f.name: f for f in fields(cls)}
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected the workflow plan, a mapping with {sorted(names)}; got "
                             f"{type(data).__name__}")
        missing, unknown = sorted(set(names) - set(data)), sorted(set(data) - set(names))
        if missing or unknown:
            raise ValueError(f"{where}: plan fields missing {missing}, unknown {unknown}")
        for name, f in names.items():
            kind = list if str(f.type).startswith("list") else dict
            if not isinstance(data[name], kind):
                raise ValueError(f"{where}: plan field {name!r} must be a {kind.__name__}, got {data[name]!r}")
        for variant, spec in data["variants"].items():
            if not isinstance(spec, Mapping) or set(spec) != set(VARIANT_KEYS):
                raise ValueError(f"{where}: variants.{variant} must hold exactly {list(VARIANT_KEYS)}, got {spec!r}")
        undefined = {n: t for n, t in data["table_tasks"].items() if t not in data["tasks"]}
        if undefined:
            raise ValueError(f"{where}: table_tasks {undefined} name tasks that are not defined (known: "
                             f"{list(data['tasks'])})")
        return cls(**{name: data[name] for name in names})
