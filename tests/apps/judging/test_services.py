"""Judging stored answers with the local judge: the reference is found, the passages go
in, each answer is judged once per judge version, and the nightly pass fills the gaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.documents.models import Chunk
from apps.judging.models import Judgement
from apps.judging.services import answer_judge, answers_judge_bulk, answers_unjudged
from apps.qa.models import Answer, Conversation
from apps.references.services import references_import
from tests import support

pytestmark = pytest.mark.django_db

QUESTION = "What temperature limits apply to forklift battery charging rooms?"
REFERENCE = "Battery charging rooms are kept between 10 °C and 35 °C, with 6 air changes per hour."


@pytest.fixture
def passages(small_pdf: bytes) -> list[Chunk]:
    document = support.ingest("ufc.pdf", small_pdf)
    return list(Chunk.objects.filter(document=document).order_by("ordinal")[:3])


def _answer(text: str, passages: list[Chunk], question: str = QUESTION) -> Answer:
    conversation = Conversation.objects.create(title=question)
    return Answer.objects.create(
        conversation=conversation,
        question=question,
        text=text,
        status=Answer.Status.DONE,
        retrieved=[{"number": n, "chunk_id": c.pk} for n, c in enumerate(passages, start=1)],
    )


def _reference(tmp_path: Path) -> None:
    record = {
        "id": "f1",
        "question": QUESTION,
        "reference_answer": REFERENCE,
        "key_facts": ["10 °C", "35 °C"],
    }
    path = tmp_path / "refs.jsonl"
    path.write_text(json.dumps(record) + "\n")
    references_import(path=path, set_name="training")


def test_an_answer_is_judged_against_its_reference_once(passages: list[Chunk], tmp_path: Path):
    _reference(tmp_path)
    good = _answer(REFERENCE, passages)
    judgement = support.judged(good.pk)
    assert judgement.status == Judgement.Status.DONE, judgement.error
    assert judgement.reference is not None and judgement.reference.external_id == "f1"
    assert judgement.score is not None and judgement.score >= 4.5
    assert judgement.backend == "local" and judgement.judge_version.startswith("local:")
    assert judgement.inputs["reference"] == REFERENCE
    assert judgement.inputs["passages"] == [c.text for c in passages]
    assert judgement.comment

    again = support.judged(good.pk)  # a redelivered task
    assert (
        again.pk == judgement.pk and again.attempts == 1 and again.judged_at == judgement.judged_at
    )
    assert Judgement.objects.count() == 1

    # A reworded question still finds the reference by meaning; a refusal scores low.
    refusal = _answer(
        "The documents I searched do not cover this.",
        passages,
        question="Which temperature limits apply to forklift battery charging rooms?",
    )
    low = support.judged(refusal.pk)
    assert low.reference_id == judgement.reference_id
    assert low.score is not None and low.score <= 2


def test_without_a_reference_the_answer_is_judged_on_its_passages(passages: list[Chunk]):
    grounded = _answer(passages[0].text[:300].rsplit(".", 1)[0] + ".", passages, "Anything?")
    judgement = support.judged(grounded.pk)
    assert judgement.status == Judgement.Status.DONE
    assert judgement.reference is None and judgement.inputs["reference"] is None
    assert judgement.score is not None and judgement.comment


def test_unfinished_answers_are_not_judged(passages: list[Chunk]):
    answer = _answer("", passages)
    Answer.objects.filter(pk=answer.pk).update(status=Answer.Status.GENERATING)
    assert answer_judge(answer_id=answer.pk) is None
    assert not Judgement.objects.exists()


def test_the_nightly_pass_judges_what_is_missing(passages: list[Chunk]):
    answers = [_answer(f"Answer {n}: heat to 55°F.", passages) for n in range(3)]
    first = support.judged(answers[0].pk)
    result = answers_judge_bulk(limit=100)
    assert (result.claimed, result.done, result.failed) == (2, 2, 0)
    assert Judgement.objects.filter(status=Judgement.Status.DONE).count() == 3
    assert not answers_unjudged(first.judge_version).exists()
    assert answers_judge_bulk(limit=100).claimed == 0
