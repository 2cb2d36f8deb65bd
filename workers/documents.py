from __future__ import annotations

from celery import shared_task

from apps.documents import services
from portal.celery import DEFAULT_QUEUE, INGEST_QUEUE


@shared_task(
    name="documents.ingest",
    queue=INGEST_QUEUE,
    # The claim in document_ingest makes a redelivered message a no-op, so late acks are safe.
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=services.TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
)
def ingest_document(document_id: int) -> str:
    return services.document_ingest(document_id=document_id).status


@shared_task(name="documents.requeue_stalled", queue=DEFAULT_QUEUE)
def requeue_stalled() -> int:
    return services.documents_requeue_stalled()
