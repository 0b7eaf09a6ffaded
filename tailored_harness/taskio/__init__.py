"""Task text: the prompt templates the task YAMLs render (``prompts/``), and a document written as
lm-eval scores it, which pruning calibration and adapter training both read."""
