"""Tiny models of every supported family built from a config, for tests and the offline demo.

Nothing can be downloaded here, so the project builds its own: a randomly initialised model of a
supported family (LLaMA unless asked; :data:`FAMILY_CONFIGS`) with grouped-query attention, saved as an ordinary Hugging Face folder together
with a tokenizer (either an existing one, such as the real LLaMA-2 tokenizer, or a small byte-level
BPE trained on the spot with ``tokenizers``). Folders are written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Iterable

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")

def _gemma3(values: dict) -> dict:
    head_dim = 2 * values["hidden_size"] // values["num_attention_heads"]  # apart from hidden / heads, as in Gemma 3
    layer_types = ["full_attention" if i % 2 else "sliding_attention" for i in range(values["num_hidden_layers"])]
    return {"head_dim": head_dim, "query_pre_attn_scalar": head_dim, "sliding_window": 6, "layer_types": layer_types,
            "tie_word_embeddings": True}


#: family (a key of :data:`tailored_harness.models.modeling_tailored.FAMILIES`) -> (its stock config
#: class in transformers, what sets the family apart at tiny size, from the shared values). Qwen2 has
#: q/k/v biases and Qwen3 q/k norms of their own; Gemma 3 a head_dim twice hidden / heads, GELU,
#: sliding-window layers between global ones and tied embeddings; Phi-3 its fused qkv_proj and
#: gate_up_proj. Head sizes stay ones vLLM's CPU attention runs (32 and up) at hidden 128 and 4 heads.
FAMILY_CONFIGS = {
    "llama": ("LlamaConfig", lambda values: {}),
    "mistral": ("MistralConfig", lambda values: {"sliding_window": 6}),
    "qwen2": ("Qwen2Config", lambda values: {}),
    "qwen3": ("Qwen3Config", lambda values: {"head_dim": values["hidden_size"] // values["num_attention_heads"]}),
    "gemma3_text": ("Gemma3TextConfig", _gemma3),
    "phi3": ("Phi3Config", lambda values: {}),
}


def family_config(family: str, **values):
    """A stock config of ``family`` from ``values`` plus the family's own tiny settings."""
    import transformers

    if family not in FAMILY_CONFIGS:
        raise ValueError(f"family={family!r} has no tiny config; valid: {', '.join(FAMILY_CONFIGS)}")
    name, extra = FAMILY_CONFIGS[family]
    return getattr(transformers, name)(**{**values, **extra(values)})


@dataclasses.dataclass(frozen=True)
class TinySpec:
    """Shape of the tiny model. GQA by default: 4 query heads share 2 KV heads. ``tie_word_embeddings``:
    the output layer is the input embedding (SmolLM2, LLaMA-3.2), one tensor in the checkpoint."""

    hidden_size: int = 64
    intermediate_size: int = 176
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = False
    seed: int = 0
    family: str = "llama"

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not a multiple of num_attention_heads={self.num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads={self.num_attention_heads} is not a multiple of num_key_value_heads={self.num_key_value_heads}"
            )


def train_tokenizer(texts: Iterable[str], vocab_size: int = 600):
    """A byte-level BPE tokenizer that adds ``<s>`` like LLaMA's, as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    bos_id = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def build_model(tokenizer, spec: TinySpec = TinySpec()):
    """A randomly initialised model of ``spec.family`` (float32) sized for ``tokenizer``; biases,
    where the family has them, drawn away from zero so that they matter."""
    import torch
    from transformers import AutoModelForCausalLM

    config = family_config(
        spec.family,
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=None,
        tie_word_embeddings=spec.tie_word_embeddings,
    )
    # The tokenizer class transformers picks for a family's folder may add tokens of its own (Qwen2's
    # adds a pad token): the vocabulary covers the tokenizer as it will be loaded beside this config.
    config.vocab_size = max(len(tokenizer), loaded_vocabulary(tokenizer, config))
    torch.manual_seed(spec.seed)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.1)
    return model.to(torch.float32).eval()


def loaded_vocabulary(tokenizer, config) -> int:
    """How many tokens ``tokenizer`` has once saved beside ``config`` and loaded with ``AutoTokenizer``."""
    import tempfile

    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        config.save_pretrained(tmp)
        return len(AutoTokenizer.from_pretrained(tmp))


RECIPE_FILE = "tailored_tiny.json"


def save_atomic(model, tokenizer, out_dir: str | os.PathLike, recipe: dict | None = None,
                extra_json: dict[str, object] | None = None) -> Path:
    """Write model, tokenizer and recipe to a temporary sibling folder, then rename it to ``out_dir``.

    ``extra_json`` maps further file names to JSON payloads written into the same folder (e.g. a
    training log), so they appear together with the weights or not at all.
    """
    from tailored_harness.core.paths import atomic_dir

    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / RECIPE_FILE).write_text(json.dumps(recipe or {}, sort_keys=True, indent=1))
        for name, payload in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(payload, sort_keys=True, indent=1))
    return out


def is_complete(folder: str | os.PathLike, recipe: dict) -> bool:
    """True when ``folder`` holds a finished build of exactly ``recipe``."""
    folder = Path(folder)
    try:
        stored = json.loads((folder / RECIPE_FILE).read_text())
    except (OSError, ValueError):
        return False
    # Compare as JSON reads back: tuples in a spec come back as lists.
    return stored == json.loads(json.dumps(recipe)) and (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def build_tiny(out_dir: str | os.PathLike, tokenizer=None, spec: TinySpec = TinySpec(), texts: Iterable[str] = (),
               tokenizer_source: str = "trained") -> tuple[Path, bool]:
    """Build a tiny model folder, or reuse it when it already holds the same recipe.

    Trains a tokenizer on ``texts`` when none is given. Returns ``(folder, reused)``.
    """
    recipe = {"tiny_spec": dataclasses.asdict(spec), "tokenizer": tokenizer_source}
    if is_complete(out_dir, recipe):
        logger.info("reusing tiny model at %s", out_dir)
        return Path(out_dir), True
    if tokenizer is None:
        tokenizer = train_tokenizer(texts)
    return save_atomic(build_model(tokenizer, spec), tokenizer, out_dir, recipe), False
