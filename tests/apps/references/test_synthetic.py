"""Synthetic question/answer pairs: written by the answer model from real passages, they
wait for an SME and never count before."""

from __future__ import annotations

import pytest

from apps.references.models import Reference
from apps.references.selectors import references_validated
from apps.references.services import (
    InvalidReferences,
    parse_synthetic_answer,
    parse_synthetic_question,
    synthetic_pairs_generate,
)
from tests import support

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("reply", "question"),
    [
        ("What is the leak rate threshold?", "What is the leak rate threshold?"),
        (
            "Sure!\nQUESTION:  When must   leaks be fixed?\nAnswer: Within 30 days.",
            "When must leaks be fixed?",
        ),
        ("The passage describes battery rooms.", None),  # no question
        ("Why?", None),  # too short to be worth an expert's time
    ],
)
def test_questions_are_taken_from_replies_or_dropped(reply: str, question: str | None):
    assert parse_synthetic_question(reply) == question


def test_answers_that_decline_or_say_nothing_are_dropped():
    assert parse_synthetic_answer("Answer:  Within 30 days.") == "Within 30 days."
    assert parse_synthetic_answer("The documents I searched do not cover this.") is None
    assert parse_synthetic_answer("Ok.") is None


@pytest.mark.timeout(300)
def test_pairs_are_written_from_passages_and_wait_for_review(small_pdf: bytes, base_model_path):
    document = support.ingest("ufc.pdf", small_pdf)
    result = synthetic_pairs_generate(count=1, document_id=document.pk, seed=1)
    assert result.requested == 1 and result.created + result.unusable == 1
    assert result.created >= 1  # SmolLM2-135M manages the two-step prompts
    pairs = Reference.objects.filter(source=Reference.Source.SYNTHETIC)
    assert pairs.count() == result.created
    for pair in pairs:
        assert pair.status == Reference.Status.PENDING
        assert pair.reference_set.name == "training"
        assert pair.chunk is not None and pair.quote == pair.chunk.text
        assert pair.document == document and pair.page == pair.chunk.page_number
        assert pair.question.endswith("?") and pair.generated_by
    assert not references_validated(set_name="training").exists()
    # A second run writes pairs from other passages only.
    again = synthetic_pairs_generate(count=1, document_id=document.pk, seed=1)
    chunks = list(pairs.values_list("chunk_id", flat=True))
    assert len(chunks) == len(set(chunks)) == result.created + again.created


def test_asking_for_nothing_is_an_error():
    with pytest.raises(InvalidReferences, match="at least one"):
        synthetic_pairs_generate(count=0)
