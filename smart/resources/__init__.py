"""GPU resources before the run: the card table, the measured memory model of every GPU rule, and ``smart plan``.

Nothing here imports torch at module level: the workflow's before-any-job fit check and ``smart plan`` read the
measured coefficients (``memory_coefficients.json``, written by ``python -m smart bench memory``) without running a model.
"""
