"""The offline suites and their reports: the synthetic world and its tasks, the reference model
trained on it, tiny models and tokenizers, the real model from a package registry, and the checks
and tables ``run_suite.sh`` and ``tailored report`` print."""
