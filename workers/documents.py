from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

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
    # The soft limit becomes the document's failure reason; the hard one kills a worker
    # stuck where no exception reaches (inside pdfium or the embedder's native code).
    soft_time_limit=settings.DOCUMENT_INGEST_TIME_LIMIT,
    time_limit=settings.DOCUMENT_INGEST_TIME_LIMIT + 60,
)
def ingest_document(document_id: int) -> str:
    return services.document_ingest(document_id=document_id).status


@shared_task(
    name="documents.requeue_stalled", queue=DEFAULT_QUEUE, soft_time_limit=60, time_limit=120
)
def requeue_stalled() -> int:
    return services.documents_requeue_stalled()


@shared_task(
    name="documents.resend_queued", queue=DEFAULT_QUEUE, soft_time_limit=60, time_limit=120
)
def resend_queued() -> int:
    return services.documents_resend_queued(
        queued_for=timedelta(minutes=settings.DOCUMENT_QUEUED_RESEND_MINUTES)
    )
