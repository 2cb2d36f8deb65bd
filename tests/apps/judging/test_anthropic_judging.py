"""Judging stored answers with the anthropic backend, against the loopback stand-in for the
Messages and Batches APIs: a failure is recorded and retried later without touching the
answer, the rubric is a stored version, and the nightly pass goes through one batch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.judging.models import Judgement, JudgeRubric
from apps.judging.services import answers_judge_bulk, judgements_due
from apps.qa.models import Answer, Conversation
from ml.judging import DEFAULT_RUBRIC
from tests import support
from tests.ml.fake_anthropic import OK, SERVER_ERROR, UNAUTHORIZED, FakeAnthropic

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(settings) -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        settings.JUDGE_BACKEND = "anthropic"
        settings.JUDGE_MODEL = "claude-test"
        settings.ANTHROPIC_API_KEY = "sk-test"
        settings.ANTHROPIC_BASE_URL = server.url
        settings.JUDGE_MAX_RETRIES = 0
        settings.JUDGE_TIMEOUT_SECONDS = 2
        settings.JUDGE_BATCH_POLL_SECONDS = 1
        yield server


def _answer(text: str = "Repair within 30 days. (expect 4.5)") -> Answer:
    conversation = Conversation.objects.create(title="leaks")
    return Answer.objects.create(
        conversation=conversation,
        question="How quickly must a leaking system be repaired?",
        text=text,
        status=Answer.Status.DONE,
    )


def test_a_failed_judgement_is_recorded_and_retried_later(fake: FakeAnthropic):
    answer = _answer()
    fake.script(SERVER_ERROR)
    failed = support.judged(answer.pk)
    assert failed.status == Judgement.Status.FAILED and failed.attempts == 1
    assert failed.next_attempt_at is not None
    assert "JudgeUnavailable" in failed.error and failed.next_attempt_at > timezone.now()
    answer.refresh_from_db()
    assert answer.status == Answer.Status.DONE  # the answer itself is untouched
    assert judgements_due() == []  # not before its backoff is over

    Judgement.objects.filter(pk=failed.pk).update(next_attempt_at=timezone.now() - timedelta(1))
    assert judgements_due() == [answer.pk]
    fake.script(OK)
    done = support.judged(answer.pk)
    assert (done.pk, done.status, done.attempts, done.score) == (failed.pk, "done", 2, 4.5)
    assert done.error == "" and done.details
    rubric = JudgeRubric.objects.get(is_active=True)
    assert (rubric.version, rubric.text) == (DEFAULT_RUBRIC.version, DEFAULT_RUBRIC.text)
    assert done.prompt_version == rubric.version
    assert done.judge_version == f"anthropic:claude-test:{rubric.version}"


def test_a_bad_key_is_recorded_with_what_to_fix_and_a_long_backoff(fake: FakeAnthropic):
    fake.script(UNAUTHORIZED)
    failed = support.judged(_answer().pk)
    assert failed.status == Judgement.Status.FAILED
    assert "ANTHROPIC_API_KEY" in failed.error
    assert failed.next_attempt_at is not None
    assert failed.next_attempt_at - timezone.now() > timedelta(minutes=30)


def test_the_nightly_pass_sends_one_batch(fake: FakeAnthropic):
    answers = [_answer(f"Answer {n}. (expect {n + 2}.0)") for n in range(3)]
    result = answers_judge_bulk(limit=10)
    assert (result.claimed, result.done, result.failed) == (3, 3, 0)
    assert len(fake.posts("/v1/messages/batches")) == 1
    assert not fake.posts("/v1/messages")
    scores = dict(Judgement.objects.values_list("answer_id", "score"))
    assert scores == {a.pk: float(n + 2) for n, a in enumerate(answers)}
