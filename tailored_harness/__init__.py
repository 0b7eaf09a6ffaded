"""tailored-harness: prune, adapt and score LLaMA-family models inside lm-evaluation-harness.

Importing this package is cheap on purpose: it must not import torch or lm_eval, because the
interpreter start-up hook (``tailored_harness_hook.pth``) imports ``tailored_harness.lmeval.startup``.
Heavy modules (``tailored_harness.lmeval.model``, ``tailored_harness.backends``) are imported on first use.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
