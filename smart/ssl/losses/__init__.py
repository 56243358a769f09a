"""SMART pretraining losses, one per file with its equation (Sec. III-C): AMIP (Eq. 6), AMPD (Eq. 5), AITD (Eq. 2),
GITD (Eq. 4); :mod:`.distill` holds the shared sharpening / centring / cross-entropy."""

from smart.ssl.losses.aitd import aitd_loss
from smart.ssl.losses.amip import amip_loss
from smart.ssl.losses.ampd import ampd_loss
from smart.ssl.losses.distill import student_log_probs, teacher_probs
from smart.ssl.losses.gitd import gitd_loss

__all__ = ["aitd_loss", "amip_loss", "ampd_loss", "gitd_loss", "student_log_probs", "teacher_probs"]
