"""Workflow glue run as `python -m workflow_scripts.<name>` from the repository root (so `smart` imports from the
checkout even when it is not pip-installed)."""
