"""Downstream evaluation (paper Sec. IV-D, V-VII): metrics, feature extraction, clustering, zero-shot DSC, attention
figures and the paper's tables. See docs/evaluation.md for the protocol and the decisions the paper leaves open."""
