"""The package's layers, bottom to top: a module imports only from its own unit or from units on lower layers.

A unit is a top-level module (``smart/atomic.py`` -> ``atomic``) or a subpackage (``smart/ssl/`` -> ``ssl``). Units on
one layer are peers and import nothing from each other. ``tests/test_layers.py`` walks every ``import`` in ``smart/``
(function-level ones included) and fails on an import against this order, on a cycle between units and on a
module-level ``__getattr__`` (a lazy attribute that hides an import from readers and tools).
"""

from __future__ import annotations

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"atomic", "preemption", "provenance", "registry", "seeding", "progress", "inputs", "overlay",
               "torch_files"}),  # core
    # utilities: atomic writes, SIGTERM/SIGUSR1 stop flag, run provenance, name -> implementation tables
    # (registries), RNG seeding, progress lines / bars, input-file errors + checked CSV reading, config layering,
    # the torch-file read guard
    frozenset({"data", "models", "run_logging"}),    # CT IO / cohorts / views; encoders, heads, encoder files; run
                                                     # folder logs (JSON lines + TensorBoard) of every training loop
    frozenset({"ssl"}),                              # masking, noisy teacher, EMA, losses, methods, SelfDistillation
    frozenset({"config"}),                           # pretraining config: presets, method overrides, validation
    frozenset({"train"}),                            # pretraining loop, checkpoints, DDP, optimiser
    frozenset({"downstream"}),                       # fine-tuning / linear probe / segmentation (its resumable
                                                     # checkpoint is train's)
    frozenset({"eval", "resources"}),                # clustering, zero-shot DSC, attention figures, tables; GPU card
                                                     # table, measured memory model, `smart plan`
    frozenset({"workflow"}),                         # the Snakemake workflow's plan and its checks before any job
    frozenset({"bench"}),                            # benchmarks
    frozenset({"commands"}),                         # one thin module per CLI step
    frozenset({"cli", "layers"}),                    # the CLI's step table and parser; this declaration
    frozenset({"__main__"}),                         # ``python -m smart``
)


def layer_of(unit: str) -> int:
    """The layer index (0 = bottom) of ``unit``; ``KeyError`` naming the unit when it is not declared here."""
    for index, units in enumerate(LAYERS):
        if unit in units:
            return index
    raise KeyError(f"unit {unit!r} is not declared in smart/layers.py LAYERS; add it to the layer it belongs to")
