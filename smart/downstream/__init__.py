"""Downstream training on a labelled cohort (paper Sec. IV-C/IV-D, Tables II-IV, Fig. 6): fine-tuning
(``finetune.py``), linear probing of frozen features (``linear_probe.py``) and what both share — the fold protocol,
downstream config, encoder loading and ``metrics.json`` record (``protocol.py``), frozen-encoder features
(``features.py``) and the metrics (``metrics.py``); beside them, the segmentation fine-tune of MONAI's SwinUNETR
(``segmentation.py``)."""
