"""The GPU cards a plan can name: memory and dense bf16 peak, in one table.

Memory is the marketed figure in GiB (NVIDIA's "80 GB" is 80 GiB of HBM); ``RESERVE_GIB`` of it is held back for what
tensor accounting does not see (CUDA context, cuBLAS/cuDNN workspaces, ECC, allocator fragmentation): a rule fits when
its predicted tensor peak is at most ``memory - RESERVE_GIB``. The bf16 peaks are NVIDIA's dense (no sparsity) tensor
core figures from the product datasheets (A100, A40, L40S, H100 SXM, H200 SXM); MFU is computed against them.

``resources.<group>.gpu_model`` names a card by its key here; a SLURM site whose gres type is named differently (or a
MIG slice) sets ``resources.<group>.gpu_mem_gb`` and that figure is used instead. A bare ``a100`` is refused: it comes
with 40 or 80 GiB.
"""

from __future__ import annotations

from dataclasses import dataclass

RESERVE_GIB = 2.0


@dataclass(frozen=True)
class Card:
    name: str
    memory_gib: float
    bf16_tflops: float  # dense tensor-core peak, TFLOP/s


CARDS: dict[str, Card] = {c.name: c for c in (
    Card("a100_40", 40.0, 312.0),
    Card("a100_80", 80.0, 312.0),
    Card("a40", 48.0, 149.7),
    Card("l40s", 48.0, 362.1),
    Card("h100", 80.0, 989.4),
    Card("h200", 141.0, 989.4),
)}
AMBIGUOUS = {"a100": ("a100_40", "a100_80")}
# A GPU rule without gpu_model may land on any card of the partition: it is checked against the smallest listed.
ANY = "any"


def smallest_card() -> Card:
    return min(CARDS.values(), key=lambda c: (c.memory_gib, c.name))


def card_memory_gib(gpu_model: str, gpu_mem_gb: float | None, where: str) -> tuple[str, float]:
    """``(label, GiB)`` of the card ``gpu_model`` (a key of :data:`CARDS`, or empty = any card), or ``gpu_mem_gb``
    when it is given (it wins: MIG slices, site-specific gres names). ``ValueError`` naming ``where`` for a model
    this table does not hold and no ``gpu_mem_gb``."""
    if gpu_mem_gb is not None:
        if not gpu_mem_gb > 0:
            raise ValueError(f"config {where}.gpu_mem_gb={gpu_mem_gb!r} must be > 0")
        return (gpu_model or ANY), float(gpu_mem_gb)
    model = str(gpu_model or "").lower()
    if not model:
        card = smallest_card()
        return f"{ANY} (smallest listed: {card.name})", card.memory_gib
    if model in CARDS:
        return model, CARDS[model].memory_gib
    if model in AMBIGUOUS:
        raise ValueError(f"config {where}.gpu_model={gpu_model!r} comes with 40 or 80 GiB: name "
                         f"{' or '.join(AMBIGUOUS[model])}, or keep the site's name and set {where}.gpu_mem_gb")
    raise ValueError(f"config {where}.gpu_model={gpu_model!r} is not in the card table (smart/resources/cards.py: "
                     f"{', '.join(sorted(CARDS))}); set {where}.gpu_mem_gb to its memory in GiB")


def bf16_peak_tflops(gpu_model: str) -> float | None:
    """Dense bf16 peak of a listed card; ``None`` for any other name (MFU is then not computed)."""
    card = CARDS.get(str(gpu_model or "").lower())
    return card.bf16_tflops if card else None


def card_from_device_name(name: str, memory_gib: float) -> str | None:
    """The table key of a CUDA device (``torch.cuda.get_device_name`` and its total memory); ``None`` if unlisted."""
    upper = name.upper()
    for key, marker in (("h200", "H200"), ("h100", "H100"), ("l40s", "L40S"), ("a40", "A40")):
        if marker in upper:
            return key
    if "A100" in upper:
        return "a100_80" if memory_gib > 50 else "a100_40"
    return None
