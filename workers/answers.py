from __future__ import annotations

from celery import shared_task

from apps.qa import services
from portal.celery import DEFAULT_QUEUE


@shared_task(name="answers.fail_stale", queue=DEFAULT_QUEUE)
def fail_stale() -> int:
    return services.answers_fail_stale()
