from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from apps.references import synthesis
from portal.celery import NIGHTLY_QUEUE


@shared_task(
    name="references.generate_synthetic",
    queue=NIGHTLY_QUEUE,
    soft_time_limit=settings.LONG_TASK_TIME_LIMIT,
    time_limit=settings.LONG_TASK_TIME_LIMIT + 60,
)
def generate_synthetic(limit: int, document_id: int | None = None) -> dict[str, Any]:
    # Safe twice: each run writes pairs only for sentences that have none yet.
    return synthesis.synthetic_requirements_generate(limit=limit, document_id=document_id).as_dict()
