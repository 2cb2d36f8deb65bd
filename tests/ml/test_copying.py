"""The copy bias: raised only once an answer restates the source, and then only the token
that continues the longest copy."""

from __future__ import annotations

import numpy as np
import pytest

from ml.copying import CopyBias
from ml.generator import GenerationResult, GenerationSettings
from ml.prompting import Passage, build_messages, passages_text

# Token ids stand for words: "temperature 55 F in forklift areas . temperature 75 F in offices"
SOURCE = [10, 55, 70, 11, 12, 13, 14, 10, 75, 70, 11, 15]


def _bias(**kwargs: object) -> CopyBias:
    return CopyBias(SOURCE, prompt_tokens=3, **kwargs)  # type: ignore[arg-type]


def test_nothing_is_raised_before_the_answer_matches_the_source():
    copy = _bias()
    assert copy.continuations([]) == []
    assert copy.continuations([10]) == []  # one token is not a copy yet (min_match 2)
    assert copy.continuations([99, 98]) == []
    scores = np.zeros(100, dtype=np.float32)
    prompt = [1, 2, 3]
    assert copy([*prompt, 99, 98], scores) is scores


def test_the_longest_copy_decides_what_comes_next():
    copy = _bias()
    assert copy.continuations([10, 55]) == [70]
    # "70 11" follows both "55" and "75": both continue ...
    assert copy.continuations([70, 11]) == [12, 15]
    # ... until the longer match says which sentence is being restated.
    assert copy.continuations([55, 70, 11]) == [12]
    assert copy.continuations([75, 70, 11]) == [15]


def test_the_bias_is_added_to_the_continuing_token_only():
    copy = _bias(bias=4.0)
    scores = np.linspace(0, 1, 100).astype(np.float32)
    out = copy([1, 2, 3, 55, 70, 11], scores)  # the prompt's 3 ids, then the answer
    changed = np.flatnonzero(out != scores)
    assert changed.tolist() == [12] and out[12] == pytest.approx(scores[12] + 4.0)
    # The answer so far starts after the prompt: prompt ids never count as copied.
    assert np.array_equal(_bias()([10, 55, 70], scores), scores)


def test_a_masked_token_stays_masked_and_ids_outside_the_scores_are_ignored():
    copy = CopyBias([5, 6, 500], prompt_tokens=0)
    scores = np.zeros(100, dtype=np.float32)
    assert np.array_equal(copy([5, 6], scores), scores)  # 500 is past the vocabulary
    masked = np.full(10, -np.inf, dtype=np.float32)
    assert np.isneginf(CopyBias([1, 2, 3], prompt_tokens=0)([1, 2], masked)).all()


def test_the_openings_are_raised_at_the_first_token_only():
    copy = CopyBias(SOURCE, prompt_tokens=3, openings=[55, 10, 55], opening_bias=6.0)
    scores = np.zeros(100, dtype=np.float32)
    first = copy([1, 2, 3], scores)  # the prompt only: the answer's first token comes next
    assert np.flatnonzero(first).tolist() == [10, 55] and first[10] == 6.0
    assert np.array_equal(copy([1, 2, 3, 99], scores), scores)  # later: only copies count
    assert np.array_equal(_bias()([1, 2, 3], scores), scores)  # no openings given: none


def test_a_copy_needs_at_least_one_token():
    with pytest.raises(ValueError, match="min_match"):
        CopyBias(SOURCE, prompt_tokens=0, min_match=0)


# The real model: the biased answer restates the passage where the plain one drifts; and
# the forklift question (the example) gets passage [1]'s 55°F, not [2]'s 75°F.

BOILER = build_messages(
    "When may a boiler plant use a single boiler?",
    [
        Passage(
            1,
            1,
            "UFC 3-410-01",
            40,
            "3-8.1",
            "On multiple boiler installations with a lead-lag control, size each boiler for 67 "
            "percent of the design heating load. A single boiler may be used only where the "
            "facility can tolerate a loss of heat during repairs, as approved by the government.",
        ),
        Passage(2, 2, "UFC 3-410-01", 41, "3-8.2", "Provide combustion air for each boiler room."),
    ],
)
FORKLIFT = build_messages(
    "What is the minimum heating temperature for warehouse forklift areas?",
    [
        Passage(
            1,
            1,
            "UFC 3-410-01",
            25,
            "3-5.3.4",
            "Spaces heated for high to moderate physical activity. 55°F (12.8°C) dry bulb. "
            "Examples of these facilities include areas in maintenance shops where engines "
            "are rebuilt, warehouse areas with forklift loading, and high-bay hangars.",
        ),
        Passage(
            2,
            2,
            "UFC 3-410-01",
            33,
            "3-7.2",
            "Set thermostats in occupied offices to 75°F for cooling.",
        ),
    ],
)


def _longest_copy(answer: str, source: str) -> int:
    """The most words in a row the answer shares with the source."""
    words, text = answer.split(), " ".join(source.split())
    best = 0
    for start in range(len(words)):
        for end in range(start + best + 1, len(words) + 1):
            if " ".join(words[start:end]) not in text:
                break
            best = end - start
    return best


def _text(generator, messages, **biases: float) -> str:
    settings = GenerationSettings(
        max_new_tokens=60, repetition_penalty=1.05, ground_numbers=True, **biases
    )
    result = list(generator.stream(messages, settings))[-1]
    assert isinstance(result, GenerationResult)
    return result.text


@pytest.fixture(scope="module", params=["llamacpp", "transformers"])
def generator(request: pytest.FixtureRequest, base_model_path):
    if request.param == "llamacpp":
        from ml.llamacpp_generator import LlamaCppGenerator
        from ml.models import smollm2_gguf

        folder, name = smollm2_gguf()
        generator = LlamaCppGenerator(folder / name, threads=2)
        yield generator
        generator.close()
    else:
        from ml.transformers_generator import TransformersGenerator

        yield TransformersGenerator(base_model_path)


@pytest.mark.slow
def test_the_biased_answer_restates_the_passage(generator):
    source = passages_text(BOILER)
    # Both open with passage [1]'s first tokens (as the portal decodes): left alone, the
    # model's own opening depends on CPU-level rounding ("The passage you requested is
    # from ..." on one AVX2 build) and may never meet the passage the bias copies from.
    free = _text(generator, BOILER, first_passage_bias=8.0)
    biased = _text(generator, BOILER, copy_bias=8.0, first_passage_bias=8.0)
    assert _longest_copy(biased, source) >= 6, biased
    assert _longest_copy(biased, source) > _longest_copy(free, source), (free, biased)


@pytest.mark.slow
def test_the_forklift_answer_takes_the_first_passages_temperature(generator):
    plain = _text(generator, FORKLIFT, copy_bias=8.0)
    assert "75" in plain, plain  # the model's own pick: the thermostat of passage [2]
    preferred = _text(generator, FORKLIFT, copy_bias=8.0, first_passage_bias=8.0)
    # 55°F (12.8°C): either unit states the requirement.
    assert ("55°F" in preferred or "12.8°C" in preferred) and "75" not in preferred, preferred
