from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.judging import services
from portal.celery import JUDGE_QUEUE, NIGHTLY_QUEUE


@shared_task(
    name="judging.judge_answer",
    queue=JUDGE_QUEUE,
    # The claim in answer_judge makes a redelivered message a no-op, so late acks are safe.
    acks_late=True,
    reject_on_worker_lost=True,
)
def judge_answer(answer_id: int) -> str | None:
    judgement = services.answer_judge(answer_id=answer_id)
    return None if judgement is None else judgement.status


@shared_task(name="judging.retry_failed", queue=JUDGE_QUEUE)
def retry_failed() -> int:
    due = services.judgements_due()
    for answer_id in due:
        judge_answer.delay(answer_id)
    return len(due)


@shared_task(
    name="judging.judge_nightly",
    queue=NIGHTLY_QUEUE,
    acks_late=True,
    soft_time_limit=settings.LONG_TASK_TIME_LIMIT,
    time_limit=settings.LONG_TASK_TIME_LIMIT + 60,
)
def judge_nightly(limit: int = 5000) -> dict[str, object]:
    return services.answers_judge_bulk(limit=limit).as_dict()
