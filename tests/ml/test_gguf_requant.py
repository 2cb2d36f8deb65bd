"""The shipped Q4_1 model re-quantized to Q8_0: the same metadata and tokenizer, the same
weights to within Q8_0's rounding, and llama.cpp loads it; to Q4_0 by llama.cpp's own
quantizer, which llama.cpp serves too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ml.gguf_requant import requantize, requantize_q8_0
from ml.models import smollm2_gguf


@pytest.fixture(scope="module")
def requantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder, name = smollm2_gguf()
    target = tmp_path_factory.mktemp("q8") / "model.Q8_0.gguf"
    return folder / name, requantize_q8_0(folder / name, target)


def test_weights_keep_their_values_to_within_q8_rounding(requantized: tuple[Path, Path]):
    from gguf import GGMLQuantizationType, GGUFReader
    from gguf.quants import dequantize

    source, target = (GGUFReader(p) for p in requantized)
    before = {t.name: t for t in source.tensors}
    after = {t.name: t for t in target.tensors}
    assert set(before) == set(after)
    assert not target.fields.keys() ^ source.fields.keys()
    name = "blk.0.attn_q.weight"
    assert GGMLQuantizationType(before[name].tensor_type).name == "Q4_1"
    assert GGMLQuantizationType(after[name].tensor_type).name == "Q8_0"
    old = dequantize(before[name].data, GGMLQuantizationType.Q4_1)
    new = dequantize(after[name].data, GGMLQuantizationType.Q8_0)
    assert old.shape == new.shape
    # Within one Q8_0 step, (block max) / 127: far finer than Q4_1's 16 levels.
    step = np.abs(old).reshape(-1, 32).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(new - old).reshape(-1, 32) <= step * 1.01 + 1e-6)
    template = "tokenizer.chat_template"
    assert target.fields[template].contents() == source.fields[template].contents()


def test_llama_cpp_serves_it_with_the_same_tokenizer(requantized: tuple[Path, Path]):
    from llama_cpp import Llama

    source, target = (
        Llama(model_path=str(p), n_ctx=256, verbose=False, vocab_only=True) for p in requantized
    )
    text = b"Heat forklift areas to 55\xc2\xb0F (12.8\xc2\xb0C) dry bulb [1]."
    assert target.tokenize(text) == source.tokenize(text)
    model = Llama(model_path=str(requantized[1]), n_ctx=256, verbose=False)
    reply = model.create_completion("The capital of France is", max_tokens=4, temperature=0)
    assert not isinstance(reply, Iterator)  # not streamed
    assert reply["choices"][0]["text"].strip()


def test_q4_0_is_written_by_llama_cpp_and_answers(tmp_path: Path):
    from gguf import GGMLQuantizationType, GGUFReader
    from llama_cpp import Llama

    folder, name = smollm2_gguf()
    target = requantize(folder / name, tmp_path / "model.Q4_0.gguf", "q4_0")
    tensors = {t.name: t for t in GGUFReader(target).tensors}
    assert GGMLQuantizationType(tensors["blk.0.attn_q.weight"].tensor_type).name == "Q4_0"
    assert [p.name for p in tmp_path.iterdir()] == ["model.Q4_0.gguf"]  # no scratch left
    model = Llama(model_path=str(target), n_ctx=256, verbose=False)
    reply = model.create_completion("The capital of France is", max_tokens=4, temperature=0)
    assert not isinstance(reply, Iterator)
    assert reply["choices"][0]["text"].strip()
    with pytest.raises(ValueError, match="cannot re-quantize to 'q2'"):
        requantize(folder / name, tmp_path / "x.gguf", "q2")
