"""GGUF in and out: the base model's weights for training, the trained weights back for llama.cpp.

Why not ``from_pretrained(gguf_file=...)`` for the weights? It parses the file's metadata (49k
token strings) three times and rebuilds gguf's name map once per tensor: about 30 s for the
135M model on 2 cores, against about 5 s here, where one :class:`gguf.GGUFReader` serves both
the reading and the writing. The tokenizer still comes from transformers' GGUF loader.

The two directions are exact mirrors, so a model that was read and written back without
training answers as the original did (checked in ``tests/finetune/test_gguf.py``):

* names: gguf's own :class:`gguf.TensorNameMap` maps Hugging Face names to GGUF names;
* Q and K: llama.cpp's converter permutes the rows of ``attn_q``/``attn_k`` (its rotary layout
  differs from transformers'); reading undoes the permutation as transformers' own GGUF loader
  does, writing re-applies it as ``convert_hf_to_gguf.py`` does;
* metadata: every key (tokenizer, chat template, rope settings) is copied from the base file;
  only ``general.file_type`` changes with the new tensor type.

Only the llama architecture is handled (SmolLM2 is one): other architectures raise a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentsim.errors import InputError

# Tensor types agentsim writes; 2-D weights take the chosen type, norms stay F32.
# F16 is the default: llama.cpp on an F16 file computes what transformers computed in training
# (the base read and written back in F16 keeps the original's greedy answers and transformers'
# loss), while Q8_0 and more so the base's own Q4_1 move logits enough to change greedy text;
# they run faster (bench/finetuned.py) and are there for when speed matters more.
GGUF_TYPES = {"f16": ("F16", "MOSTLY_F16"), "q8_0": ("Q8_0", "MOSTLY_Q8_0"),
              "q4_1": ("Q4_1", "MOSTLY_Q4_1")}


@dataclass
class GGUFModel:
    """What the base file holds: its reader (for writing back), a transformers config and the
    weights by Hugging Face name, dequantized to float32."""

    path: Path
    reader: Any
    config: Any
    weights: dict[str, np.ndarray]


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """Hugging Face row order → llama.cpp's (``convert_hf_to_gguf.py``'s ``permute``)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
        w.shape)


def _unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order → Hugging Face's (the inverse of :func:`_permute`)."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(
        w.shape)


def _field(reader: Any, key: str, default: Any = None) -> Any:
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def _heads(config: Any, gguf_name: str) -> int | None:
    """The head count whose permutation applies to a tensor, or None (not Q or K)."""
    if ".attn_q." in gguf_name:
        return config.num_attention_heads
    if ".attn_k." in gguf_name:
        return config.num_key_value_heads
    return None


def _name_map(reader: Any, config: Any, path: Path) -> dict[str, str]:
    """GGUF tensor name → Hugging Face parameter name, for every tensor of the file."""
    import gguf

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    hf_names = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    for i in range(config.num_hidden_layers):
        hf_names += [f"model.layers.{i}.{part}.weight" for part in (
            "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm",
            "post_attention_layernorm")]
    mapping = {names.get_name(n, try_suffixes=(".weight",)): n for n in hf_names}
    missing = [t.name for t in reader.tensors if t.name not in mapping]
    if missing:
        raise InputError(f"unexpected tensors for a llama model: {missing[:3]}", source=path)
    return mapping


def _config(reader: Any, path: Path) -> Any:
    """A transformers LlamaConfig from the file's metadata."""
    from transformers import LlamaConfig

    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise InputError(f"fine-tuning handles llama-architecture GGUF files only (got {arch!r})",
                         source=path)

    def key(name: str, default: Any = None) -> Any:
        return _field(reader, f"llama.{name}", default)

    heads = int(key("attention.head_count"))
    tied = all(t.name != "output.weight" for t in reader.tensors)
    return LlamaConfig(
        vocab_size=len(reader.fields["tokenizer.ggml.tokens"].data),
        hidden_size=int(key("embedding_length")),
        intermediate_size=int(key("feed_forward_length")),
        num_hidden_layers=int(key("block_count")),
        num_attention_heads=heads,
        num_key_value_heads=int(key("attention.head_count_kv", heads)),
        max_position_embeddings=int(key("context_length")),
        rms_norm_eps=float(key("attention.layer_norm_rms_epsilon")),
        rope_parameters={"rope_type": "default",
                         "rope_theta": float(key("rope.freq_base", 10000.0))},
        tie_word_embeddings=tied,
        bos_token_id=_field(reader, "tokenizer.ggml.bos_token_id"),
        eos_token_id=_field(reader, "tokenizer.ggml.eos_token_id"),
        pad_token_id=_field(reader, "tokenizer.ggml.padding_token_id"),
    )


def read_gguf(path: Path) -> GGUFModel:
    """Read a llama GGUF file: config and float32 weights by Hugging Face name."""
    from gguf import GGUFReader, quants

    reader = GGUFReader(str(path))
    config = _config(reader, path)
    mapping = _name_map(reader, config, path)
    weights: dict[str, np.ndarray] = {}
    for tensor in reader.tensors:
        # A copy: the reader's arrays are read-only views of the memory-mapped file.
        w = np.array(quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
        heads = _heads(config, tensor.name)
        weights[mapping[tensor.name]] = _unpermute(w, heads) if heads else w
    return GGUFModel(Path(path), reader, config, weights)


def load_base(path: Path, dtype: Any = None) -> tuple[Any, GGUFModel]:
    """A transformers LlamaForCausalLM holding the file's weights, and the file as read."""
    import torch
    from transformers import LlamaForCausalLM

    base = read_gguf(path)
    with torch.device("meta"):  # no random init of weights that are overwritten at once
        model = LlamaForCausalLM(base.config)
    state = {name: torch.from_numpy(w) for name, w in base.weights.items()}
    if base.config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    if base.config.tie_word_embeddings:
        model.tie_weights()
    model.model.rotary_emb = type(model.model.rotary_emb)(base.config)  # buffers off the meta
    return model.to(dtype or torch.float32), base


def write_gguf(base: GGUFModel, state: dict[str, Any], out: Path, kind: str = "f16") -> Path:
    """Write ``state`` (Hugging Face names → tensors) as a GGUF file with the base's metadata.

    Tensors keep the base file's names and order; 2-D weights are stored as ``kind``
    (:data:`GGUF_TYPES`), 1-D ones as F32. Written to a temporary name, then renamed, so a
    crash never leaves a half-written model under the final name.
    """
    import gguf
    from gguf import quants

    if kind not in GGUF_TYPES:
        raise InputError(f"unknown GGUF type {kind!r} (known: {', '.join(GGUF_TYPES)})",
                         source="--gguf-type")
    qtype = gguf.GGMLQuantizationType[GGUF_TYPES[kind][0]]
    file_type = gguf.LlamaFileType[GGUF_TYPES[kind][1]]
    mapping = _name_map(base.reader, base.config, base.path)
    out = Path(out)
    tmp = out.with_suffix(".tmp")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    for key, field in base.reader.fields.items():
        # GGUF.* are the reader's view of the header; the writer adds the architecture itself.
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
            continue
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub)
    writer.add_file_type(int(file_type))
    for tensor in base.reader.tensors:
        w = state[mapping[tensor.name]]
        w = (w.detach().float().cpu().numpy() if hasattr(w, "detach") else np.asarray(w))
        heads = _heads(base.config, tensor.name)
        w = np.ascontiguousarray(_permute(w, heads) if heads else w, dtype=np.float32)
        if w.ndim == 1:
            writer.add_tensor(tensor.name, w)
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(tensor.name, w.astype(np.float16))
        else:
            # A uint8 block array: the writer derives the logical shape from its byte shape.
            writer.add_tensor(tensor.name, quants.quantize(w, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    return out
