"""Few-shot LoRA adaptation: one adapter per requested task, trained on that task's own examples.

Stages, each in its own module:

* :mod:`~tailored_harness.adapt.spec`: :class:`AdaptSpec`, validated;
* :mod:`~tailored_harness.adapt.shots`: which training documents (never the evaluated split);
* :mod:`~tailored_harness.adapt.train`: the LoRA training loop (loss on the gold continuation);
* :mod:`~tailored_harness.adapt.store`: fingerprints and the cache of PEFT adapter folders;
* :mod:`~tailored_harness.adapt.pipeline`: find or train every task's adapter, load them for scoring.

Importing this package is cheap (no torch); the heavy modules load on first use.
"""

from __future__ import annotations

from tailored_harness.adapt.spec import AdaptSpec

__all__ = ["AdaptSpec"]
