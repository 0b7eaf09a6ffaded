"""Write GGUF files of tiny LLaMA folders, the way llama.cpp lays them out, for the GGUF import tests.

No GGUF file can be downloaded in the tests, so they make their own from a tiny Hugging Face
folder with a byte-level BPE tokenizer: F32 tensors under llama.cpp's names (q and k rows permuted
into llama.cpp's rotary layout, which the reader undoes), the config and the tokenizer as metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Hugging Face LLaMA weight name (per layer) -> llama.cpp tensor name.
LAYER_TENSORS = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


def _llama_cpp_rotary_rows(weight: np.ndarray, heads: int) -> np.ndarray:
    """Rows of a q/k projection reordered as llama.cpp stores them (interleaved rotary halves)."""
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _tensors(model) -> dict[str, np.ndarray]:
    config = model.config
    state = {name: tensor.detach().float().numpy() for name, tensor in model.state_dict().items()}
    out = {"token_embd.weight": state["model.embed_tokens.weight"], "output_norm.weight": state["model.norm.weight"]}
    if not config.tie_word_embeddings:
        out["output.weight"] = state["lm_head.weight"]
    for i in range(config.num_hidden_layers):
        for hf_name, cpp_name in LAYER_TENSORS.items():
            weight = state[f"model.layers.{i}.{hf_name}.weight"]
            if cpp_name == "attn_q":
                weight = _llama_cpp_rotary_rows(weight, config.num_attention_heads)
            elif cpp_name == "attn_k":
                weight = _llama_cpp_rotary_rows(weight, config.num_key_value_heads)
            out[f"blk.{i}.{cpp_name}.weight"] = weight
    return out


def write_gguf(model_dir: Path, out: Path, architecture: str = "llama", add_bos: bool | None = None) -> Path:
    """A GGUF file of the tiny LLaMA folder ``model_dir`` (byte-level BPE tokenizer), at ``out``; its
    ``add_bos_token`` flag says what the folder's tokenizer does unless ``add_bos`` says otherwise."""
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = model.config
    writer = gguf.GGUFWriter(str(out), architecture)
    writer.add_name("tiny-llama")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_vocab_size(config.vocab_size)
    vocab = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    tokens = sorted(vocab["vocab"], key=vocab["vocab"].get)
    merges = [m if isinstance(m, str) else " ".join(m) for m in vocab["merges"]]
    special = set(tokenizer.all_special_tokens)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_unk_token_id(tokenizer.unk_token_id)
    adds_bos = tokenizer("a")["input_ids"][0] == tokenizer.bos_token_id
    writer.add_add_bos_token(adds_bos if add_bos is None else add_bos)
    for name, array in _tensors(model).items():
        writer.add_tensor(name, np.ascontiguousarray(array, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def write_header_only(out: Path, architecture: str) -> Path:
    """A GGUF file with an architecture and no tensors (enough for the architecture check)."""
    import gguf

    writer = gguf.GGUFWriter(str(out), architecture)
    writer.add_name("header-only")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
