"""SMART: Self-distilled Masked Attention guided masked image modeling with a noise Regularized Teacher.

Reference implementation of Jiang et al., "Self-distilled Masked Attention guided masked image modeling with noise
Regularized Teacher (SMART) for medical image analysis": a 3D Swin transformer with a semantic
attention (SA) [CLS] block (Sec. III-B), attention-guided masking, a patch-dropout noisy teacher (Sec. III-D) and the
AMIP/AMPD/AITD/GITD losses (Eqs. 2-6), plus the data, training, evaluation and benchmark code used by the workflow.
"""

__version__ = "0.1.0"
