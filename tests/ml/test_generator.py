"""The local generator on the real SmolLM2-135M-Instruct weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.adapters import AdapterRefused
from ml.generator import GenerationResult, GenerationSettings
from ml.prompting import Passage, build_messages
from ml.transformers_generator import TransformersGenerator as LocalGenerator
from tests import support

pytestmark = pytest.mark.slow

PASSAGE = Passage(
    1,
    1,
    "UFC 3-410-01",
    25,
    "3-5.3.4",
    "3-5.3.4 Spaces Conditioned for Heating - High to Moderate Physical Activity. 55°F (12.8°C) dry bulb. "
    "Examples include warehouse areas where there are forklift loading operations.",
)
MESSAGES = build_messages(
    "What heating temperature applies to warehouse forklift areas?", [PASSAGE]
)
SETTINGS = GenerationSettings(max_new_tokens=24)


@pytest.fixture(scope="module")
def generator(base_model_path: Path) -> LocalGenerator:
    return LocalGenerator(base_model_path)


def _run(generator: LocalGenerator) -> tuple[list[str], GenerationResult]:
    events = list(generator.stream(MESSAGES, SETTINGS))
    result = events[-1]
    assert isinstance(result, GenerationResult)
    return [e for e in events[:-1] if isinstance(e, str)], result


def test_pad_token_is_not_eos(generator: LocalGenerator):
    assert generator.tokenizer.pad_token == "<|endoftext|>"
    assert generator.tokenizer.pad_token_id != generator.tokenizer.eos_token_id
    assert generator.tokenizer.padding_side == "left"


def test_stream_yields_text_then_a_result(generator: LocalGenerator):
    pieces, result = _run(generator)
    assert len(pieces) > 1 and "".join(pieces) == result.text
    assert result.adapter == "base" and result.model == "SmolLM2-135M-Instruct"
    assert result.prompt_tokens > 50 and 0 < result.completion_tokens <= 24
    assert 0 < result.first_token_ms <= result.generate_ms


def test_adapters_swap_in_and_a_tampered_one_is_refused(
    generator: LocalGenerator, tmp_path: Path, base_model_path: Path
):
    _, base = _run(generator)
    good = support.make_adapter(base_model_path, tmp_path, "v1", seed=1, scale=2.0)
    generator.activate("v1", good, None)
    _, adapted = _run(generator)
    assert adapted.adapter == "v1" and adapted.text != base.text

    bad = support.make_adapter(base_model_path, tmp_path, "v2", seed=2)
    (bad / "adapter_model.safetensors").write_bytes(b"corrupted")
    with pytest.raises(AdapterRefused):
        generator.activate("v2", bad, None)
    assert generator.served_adapter == "v1"

    generator.activate("base", None, None)
    _, again = _run(generator)
    assert again.adapter == "base" and again.text == base.text  # greedy decoding is reproducible


def test_a_waiting_swap_goes_before_queued_generations():
    import threading
    import time

    from ml.generator import Turns

    turns, order = Turns(), []
    release = threading.Event()

    def first() -> None:
        with turns.generation():
            order.append("generation 1")
            release.wait(5)

    def queued(name: str) -> None:
        with turns.generation():
            order.append(name)

    def swap() -> None:
        with turns.swap():
            order.append("swap")

    threads = [threading.Thread(target=first)]
    threads[0].start()
    time.sleep(0.05)
    for name in ("generation 2", "generation 3"):
        threads.append(threading.Thread(target=queued, args=(name,)))
        threads[-1].start()
    time.sleep(0.05)
    threads.append(threading.Thread(target=swap))
    threads[-1].start()
    time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join(5)
    assert order[:2] == ["generation 1", "swap"] and sorted(order[2:]) == [
        "generation 2",
        "generation 3",
    ]
