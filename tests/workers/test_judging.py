"""Judging through a real worker: queued when the answer commits, done once however often
the message arrives."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.judging.models import Judgement
from apps.judging.services import judge_enqueue
from apps.qa.models import Answer, Conversation
from tests import support
from workers.judging import judge_answer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def _answer() -> Answer:
    conversation = Conversation.objects.create(title="q")
    return Answer.objects.create(
        conversation=conversation,
        question="What is the indoor design temperature for heating?",
        text="Heat to 68 °F.",
        status=Answer.Status.DONE,
    )


def _judged(answer_id: int) -> bool:
    return Judgement.objects.filter(answer_id=answer_id, status="done").exists()


def test_a_committed_answer_is_judged_by_the_worker(settings):
    settings.JUDGE_ON_ANSWER = True
    with transaction.atomic():
        answer = _answer()
        judge_enqueue(answer.pk)
        # Nothing is sent before the commit: the worker could not see the row yet.
        assert not Judgement.objects.exists()
    support.wait_for(lambda: _judged(answer.pk), timeout=120, message="judgement")
    judgement = Judgement.objects.get(answer=answer)
    assert judgement.score is not None and judgement.comment


def test_a_redelivered_message_judges_once():
    answer = _answer()
    for _ in range(3):
        judge_answer.delay(answer.pk)
    support.wait_for(lambda: _judged(answer.pk), timeout=120, message="judgement")
    judgement = Judgement.objects.get(answer=answer)
    support.wait_for(
        lambda: not Judgement.objects.filter(answer=answer, status="running").exists(),
        timeout=30,
        message="idle",
    )
    judgement.refresh_from_db()
    assert judgement.attempts == 1 and Judgement.objects.filter(answer=answer).count() == 1
