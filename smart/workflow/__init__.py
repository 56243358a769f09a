"""The workflow's plan, as plain functions of the (schema-validated, default-filled) Snakemake config.

``rules/*.smk`` keep paths, resources, targets and wildcards; what the workflow *decides* lives here, unit-tested:
which variants are pretrained, carry SA or a [CLS] token and are fine-tuned with which heads (``variants.py``), the
``--set`` words every step receives (``overrides.py``), the tasks and what their sources need (``tasks.py``), the
segmentation and study arms (``segmentation.py``, ``study.py``), unset placeholders (``placeholders.py``), and the
checks before any job (``checks.py``), which resolve every planned variant and task through the package's own config
resolution (``resolve.py``) into a :class:`~smart.workflow.plan.Plan` (written once as results/plan.json for
``smart tables`` and ``smart segmentation-table``).

Importing any module here does not import torch: the workflow validates its config against config/schema.yaml first
(docs/ARCHITECTURE.md); only :func:`smart.workflow.resolve.resolve_plan` imports ``smart.config`` (and so torch),
after that validation.
"""
