"""A peft LoRA adapter as a GGUF LoRA file that llama.cpp loads beside its base GGUF.

The conversion is small arithmetic, not a model export: each ``lora_A``/``lora_B`` pair is
written under the name llama.cpp gives the base weight it modifies (``blk.3.attn_q``), and
the adapter's alpha goes into the metadata (llama.cpp scales by alpha / r, as peft does).
One subtlety: for Llama-family models the GGUF conversion reorders the rows of the query
and key projections (rotary halves interleaved), so ``lora_B`` of ``q_proj``/``k_proj`` is
reordered the same way; ``lora_A`` acts on the input side and stays as it is.

Only what llama.cpp can apply is converted: plain LoRA on linear layers of the blocks.
DoRA, per-module ranks, and adapted embeddings or heads are refused with the reason.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from ml.adapters import GGUF_LORA

# Hugging Face model_type -> (GGUF architecture name, whether q/k rows are reordered).
_ARCHITECTURES: dict[str, tuple[str, bool]] = {
    "llama": ("llama", True),
    "mistral": ("llama", True),
    "qwen2": ("qwen2", False),
    "qwen3": ("qwen3", False),
}


class ConversionError(RuntimeError):
    """The adapter cannot be expressed as a GGUF LoRA; the message says why."""


def reorder_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """The row order llama.cpp's Llama conversion uses for q/k projections."""
    rows = weights.shape[0]
    if rows % (n_head * 2):
        raise ConversionError(f"{rows} rows cannot be split over {n_head} heads")
    return (
        weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _load_tensors(adapter_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    weights = adapter_dir / "adapter_model.safetensors"
    if weights.is_file():
        try:
            return dict(load_file(str(weights)))
        except Exception:  # bfloat16 has no numpy type: read through torch
            from safetensors.torch import load_file as load_torch

            return {k: v.float().numpy() for k, v in load_torch(str(weights)).items()}
    legacy = adapter_dir / "adapter_model.bin"
    if legacy.is_file():
        import torch

        state = torch.load(legacy, map_location="cpu", weights_only=True)
        return {k: v.float().numpy() for k, v in state.items()}
    raise ConversionError(f"{adapter_dir} holds no adapter_model.safetensors")


def _adapter_config(adapter_dir: Path) -> dict[str, Any]:
    path = adapter_dir / "adapter_config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConversionError(f"cannot read {path}: {exc}") from exc
    return check_adapter_config(config)


def check_adapter_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (peft's adapter_config) if llama.cpp can apply it, else ConversionError."""
    if config.get("peft_type", "LORA") != "LORA":
        raise ConversionError(f"only LoRA adapters convert, not {config.get('peft_type')}")
    if config.get("use_dora"):
        raise ConversionError("DoRA adapters cannot be applied by llama.cpp")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ConversionError("per-module ranks or alphas cannot be expressed in a GGUF LoRA")
    if config.get("modules_to_save"):
        raise ConversionError(
            f"fully trained modules {config['modules_to_save']} cannot be expressed as a LoRA"
        )
    return config


def convert(adapter_dir: Path, *, base_config: dict[str, Any], out: Path | None = None) -> Path:
    """Writes ``adapter_dir/adapter.gguf`` (or ``out``) from the peft files in
    ``adapter_dir``; ``base_config`` is the base model's Hugging Face config."""
    adapter_config = _adapter_config(adapter_dir)  # its refusals first: they say more
    return write(
        _load_tensors(adapter_dir),
        adapter_config=adapter_config,
        base_config=base_config,
        out=out or adapter_dir / GGUF_LORA,
    )


def write_from_model(model: Any, out: Path, *, adapter_name: str = "default") -> Path:
    """Writes the current weights of a peft model's adapter (during training, without
    saving the adapter folder first): PPO samples its rollouts with them in llama.cpp."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model, adapter_name=adapter_name)
    tensors = {k: v.detach().float().cpu().numpy() for k, v in state.items()}
    return write(
        tensors,
        adapter_config=check_adapter_config(model.peft_config[adapter_name].to_dict()),
        base_config=model.get_base_model().config.to_dict(),
        out=out,
    )


def write(
    tensors: dict[str, np.ndarray],
    *,
    adapter_config: dict[str, Any],
    base_config: dict[str, Any],
    out: Path,
) -> Path:
    """The GGUF LoRA of peft's ``lora_A``/``lora_B`` tensors, written to ``out``."""
    import gguf

    model_type = str(base_config.get("model_type", ""))
    if model_type not in _ARCHITECTURES:
        raise ConversionError(
            f"no GGUF LoRA conversion for model type {model_type!r} "
            f"(supported: {', '.join(sorted(_ARCHITECTURES))})"
        )
    arch_name, reorder_qk = _ARCHITECTURES[model_type]
    arch = next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == arch_name)
    n_layers = int(base_config["num_hidden_layers"])
    n_head = int(base_config["num_attention_heads"])
    n_head_kv = int(base_config.get("num_key_value_heads") or n_head)
    names = gguf.get_tensor_name_map(arch, n_layers)

    rank = int(adapter_config["r"])
    alpha = float(adapter_config.get("lora_alpha") or rank)
    if adapter_config.get("use_rslora"):
        alpha *= math.sqrt(rank)  # peft scales by alpha / sqrt(r); llama.cpp by alpha / r

    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in key:
                module = key.split(marker)[0]
                pairs.setdefault(module, {})[part] = np.ascontiguousarray(value, dtype=np.float32)
                break
        else:
            raise ConversionError(f"{key} is not a LoRA weight; it cannot be converted")
    if not pairs:
        raise ConversionError("the adapter holds no LoRA weights")

    converted: list[tuple[str, np.ndarray]] = []
    for module, pair in sorted(pairs.items()):
        if set(pair) != {"lora_A", "lora_B"}:
            raise ConversionError(f"{module} has only {', '.join(pair)}")
        hf_name = module.removeprefix("base_model.model.")
        gguf_name = names.get_name(hf_name + ".weight", try_suffixes=(".weight",))
        if gguf_name is None or not gguf_name.startswith("blk."):
            raise ConversionError(f"{hf_name} has no llama.cpp counterpart that LoRA can adapt")
        lora_a, lora_b = pair["lora_A"], pair["lora_B"]
        if lora_a.shape[0] != rank or lora_b.shape[1] != rank:
            raise ConversionError(f"{hf_name} does not have rank {rank}")
        if reorder_qk and hf_name.endswith("self_attn.q_proj"):
            lora_b = reorder_rows(lora_b, n_head)
        elif reorder_qk and hf_name.endswith("self_attn.k_proj"):
            lora_b = reorder_rows(lora_b, n_head_kv)
        base = gguf_name.removesuffix(".weight")
        converted.append((f"{base}.weight.lora_a", lora_a))
        converted.append((f"{base}.weight.lora_b", np.ascontiguousarray(lora_b)))

    staging = out.with_name(f".{out.name}.partial")
    logging.getLogger("gguf.gguf_writer").setLevel(logging.WARNING)  # it logs every file at INFO
    writer = gguf.GGUFWriter(str(staging), arch_name)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for name, array in converted:
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    except BaseException:
        writer.close()
        staging.unlink(missing_ok=True)
        raise
    staging.replace(out)
    return out
