"""The tiny random Llama of the training tests as a float32 GGUF, so llama.cpp can serve it
and PPO can sample from it. Its tokenizer is SmolLM2's, so the tokenizer metadata is copied
from SmolLM2's GGUF; the weights are written under llama.cpp's names, with the query and key
rows reordered as llama.cpp's own conversion does. (Real models are converted with
llama.cpp's ``convert_hf_to_gguf.py``; see README.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ml.gguf_lora import reorder_rows


def export_tiny_llama(folder: Path, *, tokenizer_gguf: Path, out: Path) -> Path:
    if out.is_file():
        return out
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    tensors = load_file(str(folder / "model.safetensors"))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)

    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name("tiny-llama")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_freq_base(float(config.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_rope_dimension_count(hidden // n_head)
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    reader = gguf.GGUFReader(str(tokenizer_gguf))
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        kind = field.types[0]
        sub = field.types[1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), kind, sub)
    for hf_name, array in sorted(tensors.items()):
        name = names.get_name(hf_name, try_suffixes=(".weight",))
        assert name is not None, hf_name
        array = np.ascontiguousarray(array, dtype=np.float32)
        if hf_name.endswith("self_attn.q_proj.weight"):
            array = reorder_rows(array, n_head)
        elif hf_name.endswith("self_attn.k_proj.weight"):
            array = reorder_rows(array, n_kv)
        writer.add_tensor(name, np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
