"""Self-supervision pieces of SMART (paper Sec. III): student masking (III-B), the co-distillation losses (III-C),
the noisy teacher, EMA teacher and centring (III-D). All operate on plain tensors, independent of the encoders.

Engine-side modules (``methods``, ``self_distillation``) live here too but are imported explicitly by their users.
"""

from smart.ssl import centering, ema, masking, noisy_teacher, schedules
from smart.ssl import losses

__all__ = ["centering", "ema", "losses", "masking", "noisy_teacher", "schedules"]
