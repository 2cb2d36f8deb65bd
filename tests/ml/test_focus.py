"""Focused context on the real embedder: the sentence that answers stays, under its own
passage number and source; the rest of the passages stays out of the prompt."""

from __future__ import annotations

import pytest

from ml.embeddings import load_embedder
from ml.focus import focus, focus_scored
from ml.prompting import Passage, build_messages

FORKLIFT = (
    "3-5.3.3 Spaces Conditioned for Heating - Low Physical Activity. 65°F (18.3°C) dry bulb. "
    "Examples include offices and lunch rooms. 3-5.3.4 Spaces Conditioned for Heating - High "
    "to Moderate Physical Activity. 55°F (12.8°C) dry bulb. Examples include warehouse areas "
    "where there are forklift loading operations. 3-5.3.5 Spaces Conditioned for Freeze "
    "Protection. 40°F (4.4°C) dry bulb."
)
DISTRACTOR = (
    "Ductwork shall be sealed to Seal Class A. Leakage testing is required for ducts over "
    "2 inches water gauge. Access doors shall be provided at fire dampers."
)


@pytest.fixture(scope="module")
def embed():
    return load_embedder().embed


def _passages() -> list[Passage]:
    return [
        Passage(1, 11, "UFC 3-410-01", 30, "3-8", DISTRACTOR),
        Passage(2, 12, "UFC 3-410-01", 25, "3-5.3.4", FORKLIFT),
    ]


def test_the_answering_sentence_stays_under_its_number(embed):
    question = "What is the minimum heating temperature for warehouse forklift areas?"
    focused = focus(question, _passages(), embed, limit=2)
    by_number = {p.number: p for p in focused}
    assert 2 in by_number and "55°F (12.8°C)" in by_number[2].text
    kept = by_number[2]
    assert (kept.document, kept.page, kept.section, kept.chunk_id) == (
        "UFC 3-410-01",
        25,
        "3-5.3.4",
        12,
    )
    assert len(" ".join(p.text for p in focused)) < len(FORKLIFT) + len(DISTRACTOR)
    prompt = build_messages(question, focused)[1]["content"]
    assert "[2] (UFC 3-410-01, page 25, §3-5.3.4)" in prompt


def test_a_short_chosen_sentence_brings_the_one_after_it(embed):
    """'3-5.3.4 ... High to Moderate Physical Activity.' alone has no value in it."""
    passages = list(reversed(_passages()))  # the forklift passage retrieved first
    focused = focus(
        "Heating for high to moderate physical activity spaces", passages, embed, limit=1
    )
    text = " ".join(p.text for p in focused)
    assert "High to Moderate Physical Activity" in text and "55°F" in text


def test_the_first_passage_always_contributes(embed):
    """The retriever's first passage is usually right even when a sentence elsewhere
    resembles the question more."""
    focused = focus("minimum heating temperature for forklift areas", _passages(), embed, limit=2)
    numbers = [p.number for p in focused]
    assert numbers[:1] == [1] and 2 in numbers


def test_limit_bounds_the_sentences_and_empty_passages_drop_out(embed):
    focused = focus("Seal Class A ductwork leakage testing", _passages(), embed, limit=1)
    assert [p.number for p in focused] == [1]
    assert focus("anything", [], embed) == []


def test_the_best_sentence_score_separates_an_answer_from_a_topic(embed):
    """The score the pipeline declines below: the forklift sentence answers its question;
    the same pages hold nothing on a SEER rating, which they never mention."""
    _, answered = focus_scored(
        "What is the minimum heating temperature for warehouse forklift areas?",
        _passages(),
        embed,
    )
    _, topic_only = focus_scored(
        "What minimum SEER rating must a new split-system air conditioner have?",
        _passages(),
        embed,
    )
    assert answered is not None and topic_only is not None
    assert topic_only < 0.5 <= answered
    assert focus_scored("anything", [], embed) == ([], None)
