"""Pipelines: resumable stages over the layers below — ``demo``, ``repro``, the attack ``figure``.

Each stage is finished when its files say so (``stages``); a pipeline imports training,
evaluation and reports, and nothing below it imports a pipeline.
"""
