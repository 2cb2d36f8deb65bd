"""Number grounding: the answer may write a number only as its prompt writes it. The rules
on a small vocabulary, then on the real SmolLM2 GGUF and transformers weights, where the
base model invents a metric conversion that the grounded one cannot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.generator import GenerationResult, GenerationSettings
from ml.grounding import NumberGrounding, NumberVocabulary, numbers_in
from ml.prompting import Passage, build_messages, grounding_text

TEXTS = ["a", " ", "5", "1", "2", "8", ".", ",", "°F", ".\n", "55", "555", "<eos>"]
ID = {text: i for i, text in enumerate(TEXTS)}


def _next(grounding: NumberGrounding, written: list[str]) -> set[str]:
    """The tokens that may follow ``written`` (a list of token texts)."""
    allowed = grounding.allowed([ID[t] for t in written], len(TEXTS))
    return set(TEXTS) if allowed is None else {TEXTS[i] for i in np.flatnonzero(allowed)}


@pytest.fixture
def grounding() -> NumberGrounding:
    vocabulary = NumberVocabulary.from_texts(TEXTS)
    return NumberGrounding(vocabulary, "Heat to 55°F (12.8°C) [1].", prompt_tokens=0)


def test_numbers_are_read_as_written():
    assert numbers_in("55°F (12.8°C), 1,200 cfm, §3-5.3.4, [2].") == {
        "55",
        "12.8",
        "1,200",
        "3",
        "5.3.4",
        "2",
    }


def test_a_number_may_start_only_as_one_of_the_prompt_starts(grounding: NumberGrounding):
    words = {"a", " ", "°F", "<eos>", ".", ",", ".\n"}
    assert _next(grounding, []) == words | {"5", "1", "55"}  # 55, 12.8 and 1 begin so
    assert _next(grounding, ["a", " "]) == words | {"5", "1", "55"}


def test_a_number_under_way_must_go_on_as_one_of_the_prompt(grounding: NumberGrounding):
    assert _next(grounding, ["5"]) == {"5"}  # "5" alone is no number of the prompt
    assert _next(grounding, ["1", "2"]) == {"."}  # only "12.8" starts "12"
    assert _next(grounding, ["1", "2", "."]) == {"8"}


def test_a_whole_number_may_end_or_be_followed_by_punctuation(grounding: NumberGrounding):
    after = _next(grounding, ["5", "5"])
    assert {"°F", " ", "<eos>", ".", ",", ".\n"} <= after
    assert not after & {"5", "1", "2", "8", "55", "555"}  # 555, 551 ... are not in it
    assert _next(grounding, ["5", "5", "."]) >= {" ", "a", "<eos>"}  # a full stop
    assert _next(grounding, ["1"]) >= {" ", "2"}  # [1] is a number of the prompt too
    assert "555" not in _next(grounding, [])  # a token of several digits is checked whole


def test_the_prompt_part_is_not_the_answer():
    vocabulary = NumberVocabulary.from_texts(TEXTS)
    grounding = NumberGrounding(vocabulary, "Heat to 55°F.", prompt_tokens=2)
    prompt = [ID["8"], ID["8"]]  # the prompt's own tokens are no tail
    scores = np.zeros(len(TEXTS), dtype=np.float32)
    out = grounding(prompt, scores)
    assert np.isneginf(out[ID["8"]]) and out[ID["5"]] == 0 and out[ID["a"]] == 0


def test_the_first_passages_numbers_are_preferred_only_when_the_model_writes_a_number():
    vocabulary = NumberVocabulary.from_texts(TEXTS)
    grounding = NumberGrounding(
        vocabulary,
        "[1] Heat to 55°F. [2] Cool to 12.8°C.",
        0,
        preferred="Heat to 55°F.",
        prefer_bias=4.0,
    )
    scores = np.zeros(len(TEXTS), dtype=np.float32)
    scores[ID["1"]] = 2.0  # the model goes for "12.8", passage [2]'s number
    out = grounding([ID["a"], ID[" "]], scores)
    assert out[ID["55"]] == 4.0 and out[ID["5"]] == 4.0 and out[ID["1"]] == 2.0
    assert int(np.argmax(out)) in (ID["5"], ID["55"])  # so it writes 55
    # A model that goes on with words is left alone: no number is pushed in.
    words = np.zeros(len(TEXTS), dtype=np.float32)
    words[ID["a"]] = 3.0
    left = grounding([ID["a"]], words)
    assert ((left == words) | np.isneginf(left)).all()  # masked as ever, nothing raised
    # Under way, the bonus goes to what continues the preferred number.
    scores = np.zeros(len(TEXTS), dtype=np.float32)
    scores[ID["5"]] = 1.0
    out = grounding([ID["5"]], scores)
    assert out[ID["5"]] == 5.0 and np.isneginf(out[ID["1"]])
    # Off by default.
    plain = NumberGrounding(vocabulary, "[1] Heat to 55°F. [2] Cool to 12.8°C.", 0)
    scores = np.zeros(len(TEXTS), dtype=np.float32)
    scores[ID["1"]] = 2.0
    assert plain([ID["a"]], scores)[ID["55"]] == 0.0


def test_headers_give_their_citation_mark_not_their_page_or_section():
    passage = Passage(1, 1, "UFC 3-410-01", 25, "3-5.3.4", "Heat to 55°F (12.8°C).")
    text = grounding_text(build_messages("How warm, in 2 words?", [passage]))
    assert numbers_in(text) == {"1", "55", "12.8", "2"}


HANDRAILS = build_messages(
    "How high must handrails be?",
    [
        Passage(
            1,
            1,
            "UFC 3-410-01",
            25,
            "3-5.3.4",
            "Top of gripping surfaces of handrails shall be 34 inches minimum and 38 inches "
            "maximum vertically above walking surfaces.",
        )
    ],
)


def _answer(generator, grounded: bool) -> str:
    settings = GenerationSettings(max_new_tokens=48, ground_numbers=grounded)
    result = list(generator.stream(HANDRAILS, settings))[-1]
    assert isinstance(result, GenerationResult)
    return result.text


@pytest.mark.slow
def test_the_grounded_answer_writes_only_the_prompts_numbers_with_llama_cpp():
    from ml.llamacpp_generator import LlamaCppGenerator
    from ml.models import smollm2_gguf

    folder, name = smollm2_gguf()
    generator = LlamaCppGenerator(folder / name, threads=2)
    allowed = numbers_in(grounding_text(HANDRAILS))
    free = _answer(generator, grounded=False)
    assert numbers_in(free) - allowed, free  # the base model converts to metres it invents
    grounded = _answer(generator, grounded=True)
    assert "34" in grounded and not numbers_in(grounded) - allowed, grounded
    generator.close()


@pytest.mark.slow
def test_the_transformers_backend_grounds_the_same_way(base_model_path: Path):
    from ml.transformers_generator import TransformersGenerator

    generator = TransformersGenerator(base_model_path)
    grounded = _answer(generator, grounded=True)
    assert "34" in grounded and not numbers_in(grounded) - numbers_in(grounding_text(HANDRAILS))
