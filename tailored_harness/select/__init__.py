"""Prompt selection: which prompt a task is scored in. ``prompt=best`` chooses one template per task
from its pool by cross-validation on the training shots (:mod:`.best`); PILLOW's per-input matcher
comes later. Its place in the pipeline is after adaptation (it trains adapters to compare
templates), before the backends score."""
