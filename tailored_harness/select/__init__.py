"""Prompt selection: which prompt a task is scored in, and what precedes each document.

``prompt=best`` chooses one template per task from its pool by cross-validation on the training
shots (:mod:`.best`). ``prompt_select`` (PILLOW) puts pool entries, instructions and demonstrations,
before each document's context, chosen per document (:mod:`.per_input`, :mod:`.selectors`,
:mod:`.matcher`). Its place in the pipeline is after adaptation (it trains adapters to compare
templates; the matcher is rewarded by the adapted model), before the backends score."""
