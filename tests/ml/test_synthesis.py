"""The text rules of synthetic pairs: which sentences state requirements, what a usable
question is, what an answer must keep."""

from __future__ import annotations

import numpy as np
import pytest

from ml import synthesis


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Flexible air ducts must not exceed 5 feet in length.", True),
        ("Provide a minimum of 55°F (12.8°C) in warehouse forklift areas at all times.", True),
        ("Design the system for the worst case of the heating and cooling seasons.", True),
        ("CORRECTION TIMEFRAME: 24 hours HCV PASS / FAIL: Fail", False),  # a table row
        ("See Table 3-1.", False),  # too short to restate
        ("The history of the building was reviewed by the committee in the last decade.", False),
        ("x" * 400 + " must", False),  # too long for a small model to restate
    ],
)
def test_requirement_sentences_are_recognised(sentence: str, expected: bool):
    assert synthesis.is_requirement(sentence) is expected


def test_a_statement_drops_bullets_and_clause_numbers():
    assert synthesis.statement("• 3-5.3.4 heat to 55°F (12.8°C) is required") == (
        "Heat to 55°F (12.8°C) is required."
    )
    assert synthesis.statement("a. Ducts must be sealed.") == "Ducts must be sealed."


@pytest.mark.parametrize(
    ("reply", "question"),
    [
        (
            "What is the maximum length of a flexible air duct?",
            "What is the maximum length of a flexible air duct?",
        ),
        ('The engineer would ask: "How long may a duct be?"', "How long may a duct be?"),
        (
            "Question: When is a balancing device required?\nAnswer: ...",
            "When is a balancing device required?",
        ),
        ("What a great question! Here's the answer:", None),  # chatter
        ("The sentence describes ducts.", None),  # no question
        ("Why?", None),  # too short
    ],
)
def test_questions_are_read_from_replies_or_dropped(reply: str, question: str | None):
    assert synthesis.parse_question(reply) == question


def test_a_question_that_states_its_answer_leaks_it():
    sentence = "Coil face velocities must not exceed 550 feet per minute."
    assert synthesis.leaks_answer("What is the limit of 550 feet per minute coils?", sentence)
    assert not synthesis.leaks_answer("What is the maximum coil face velocity?", sentence)


def test_an_answer_must_keep_every_measured_value():
    sentence = "Heat forklift areas to 55°F (12.8°C) minimum."
    assert synthesis.measures(sentence) == ["55°F", "12.8°C"]
    assert synthesis.carries_numbers("Keep them at 55 °F (12.8 °C) [1].", sentence)
    assert not synthesis.carries_numbers("Keep them at 55 °F [1].", sentence)


def test_near_duplicates_collapse_into_the_first():
    vectors = np.array([[1, 0], [0.999, 0.0447], [0, 1], [0.0447, 0.999]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert synthesis.near_duplicates(vectors, threshold=0.95) == [-1, 0, -1, 2]


def test_the_citation_goes_before_the_full_stop():
    assert synthesis.with_citation("Ducts must not exceed 5 feet.", 2) == (
        "Ducts must not exceed 5 feet [2]."
    )
    assert synthesis.with_citation("Ducts must be sealed", 1) == "Ducts must be sealed [1]."


def test_a_question_for_a_value_needs_a_sentence_that_states_one():
    assert synthesis.asks_for_missing_value(
        "What is the maximum number of doors?", "Equipment rooms must have exterior doors."
    )
    assert not synthesis.asks_for_missing_value(
        "What is the maximum length of a duct?", "Ducts must not exceed 5 feet in length."
    )
    assert not synthesis.asks_for_missing_value(
        "What must equipment rooms have?", "Equipment rooms must have exterior doors."
    )


def test_a_value_under_its_heading_joins_it():
    text = (
        "3-5.3.4 Spaces with Heavy Physical Activity.\n55°F (12.8°C) dry bulb. Examples of "
        "these facilities include warehouses with forklift loading operations."
    )
    assert synthesis.requirement_sentences(text)[0] == (
        "3-5.3.4 Spaces with Heavy Physical Activity. 55°F (12.8°C) dry bulb."
    )
