"""Writing a matplotlib figure: one PNG, atomically (temp file + rename), then the figure is closed."""

from __future__ import annotations

import os
from pathlib import Path


def save_png(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically and close it; returns ``Path(path)``."""
    import matplotlib.pyplot as plt

    from smart.atomic import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
