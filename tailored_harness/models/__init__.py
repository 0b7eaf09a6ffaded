"""Model types and formats: ``tailored_llama`` (per-layer widths) for transformers and for vLLM,
the vLLM plugin that registers it, and GGUF files converted into Hugging Face folders."""
