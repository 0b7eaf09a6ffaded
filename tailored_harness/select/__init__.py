"""Prompt selection: picking prompts from a task's pool for each input (PILLOW's matcher and its
baselines). Empty until that stage is built; its place in the pipeline is after adaptation, before
the backends score."""
