"""SMART encoders and heads: Swin (``swin.py``) and ViT (``vit.py``) backbones with the semantic-attention block
(``semantic_attention.py``), the DINO / reconstruction heads (``heads.py``), the classifier for fine-tuning
(``classifier.py``), the encoder factory (``factory.build_encoder``) and the encoder file (``encoder_io.py``).

Import from the modules themselves; this package file re-exports nothing, so importing one model never drags in the
others.
"""
