from __future__ import annotations

from celery import shared_task

from apps.references import services
from portal.celery import NIGHTLY_QUEUE


@shared_task(name="references.generate_synthetic", queue=NIGHTLY_QUEUE)
def generate_synthetic(count: int, document_id: int | None = None) -> dict[str, int]:
    # Not idempotent by claim, but harmless twice: passages that already have a pair are skipped.
    return services.synthetic_pairs_generate(count=count, document_id=document_id).as_dict()
