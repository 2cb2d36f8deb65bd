"""Judging through a real worker: queued when the answer commits, done once however often
the message arrives, and done the same night when the broker was down as the answer
finished."""

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


def test_answers_finished_while_the_broker_is_down_are_kept_and_judged_once_it_is_back(
    settings, embedded_redis
):
    from workers.judging import judge_nightly

    if embedded_redis is None:
        pytest.skip("REDIS_URL names a Redis this suite does not run")
    settings.JUDGE_ON_ANSWER = True
    embedded_redis.stop()
    try:
        with transaction.atomic():  # an answer finishing: its judging is queued on commit
            answers = [_answer() for _ in range(2)]
            for answer in answers:
                judge_enqueue(answer.pk)
        # The commit went through; the lost message cost the answers nothing.
        assert Answer.objects.filter(pk__in=[a.pk for a in answers]).count() == 2
        assert not Judgement.objects.exists()
    finally:
        embedded_redis.start()
    # The night's pass judges every answer without a judgement, whatever happened to its
    # message: here, as if the night had come.
    judge_nightly.delay()
    for answer in answers:
        support.wait_for(lambda a=answer: _judged(a.pk), timeout=120, message="judgement")
    assert Judgement.objects.filter(status="done").count() == 2
