"""Name -> implementation tables (MONAI style): every registry in the package is a plain ``dict`` read through
:func:`look_up`, which is ``monai.utils.look_up_option`` with the error on one line and prefixed by what was looked up.

The registries: masking strategies (``smart.ssl.masking.MASKING_STRATEGIES``), pretraining methods and ablations
(``smart.ssl.methods.METHODS`` / ``ABLATIONS``), backbones (``smart.models.factory.BACKBONES``), fine-tuning heads
(``smart.models.classifier.HEADS``) and config presets (``smart.config.PRESETS``). ``config/schema.yaml`` repeats their
names as enums for the workflow; ``tests/config/test_schema_registries.py`` fails when the two disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from monai.utils import look_up_option

T = TypeVar("T")


def look_up(what: str, name: Any, table: Mapping[str, T]) -> T:
    """``table[name]``; an unknown ``name`` raises ``ValueError`` ``"<what>: By 'x', did you mean 'y'? ... Available
    options are {...}."`` (MONAI's message, one line)."""
    try:
        return look_up_option(name, table)
    except ValueError as err:
        raise ValueError(f"{what}: " + " ".join(str(err).split())) from None
