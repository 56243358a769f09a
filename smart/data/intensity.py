"""CT intensity convention shared by every stage that feeds a network (docs/ARCHITECTURE.md "Intensities")."""

from __future__ import annotations

import numpy as np

HU_MIN = -1000.0
HU_MAX = 1000.0


def hu_to_unit(volume, hu_min: float = HU_MIN, hu_max: float = HU_MAX):
    """Clip Hounsfield units to ``[hu_min, hu_max]`` and scale linearly to ``[0, 1]``.

    Works on numpy arrays and torch tensors alike (returns the same kind, float32). Air (-1000 HU) maps to 0, so a
    zero-filled pad or a dropped patch reads as air rather than as soft tissue.
    """
    if hu_max <= hu_min:
        raise ValueError(f"hu_max ({hu_max}) must be greater than hu_min ({hu_min})")
    scale = 1.0 / (hu_max - hu_min)
    if isinstance(volume, np.ndarray):
        return ((np.clip(volume.astype(np.float32), hu_min, hu_max) - hu_min) * scale).astype(np.float32)
    return (volume.float().clamp(hu_min, hu_max) - hu_min) * scale
