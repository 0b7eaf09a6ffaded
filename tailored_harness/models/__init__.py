"""Model types and formats: the supported families (:mod:`.families`, the table in
:mod:`.modeling_tailored`), their ``tailored_<family>`` types (per-layer widths) for transformers and
for vLLM, the vLLM plugin that registers them, and GGUF files converted into Hugging Face folders."""
