"""Ingestion through a real Celery worker process, the real broker and the real database."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.documents.models import Chunk, Document
from tests import support
from workers.documents import ingest_document, requeue_stalled

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def _status(document_id: int) -> str:
    return Document.objects.values_list("status", flat=True).get(pk=document_id)


def test_uploaded_document_is_ingested_by_the_worker(small_pdf: bytes):
    document = support.upload("criteria.pdf", small_pdf).document  # queued after commit
    support.wait_for(
        lambda: _status(document.pk) in {"ready", "failed"}, timeout=120, message="ingest"
    )
    document.refresh_from_db()
    assert document.status == "ready", document.error
    assert document.pages_done == document.pages_total == 3
    assert document.is_current and Chunk.objects.filter(document=document, searchable=True).exists()


def test_a_redelivered_message_does_not_ingest_twice(small_pdf: bytes):
    document = support.upload("criteria.pdf", small_pdf, enqueue=False).document
    for _ in range(3):  # the same message delivered three times
        ingest_document.delay(document.pk)
    support.wait_for(lambda: _status(document.pk) == "ready", timeout=120, message="ingest")
    reference = support.ingest("copy.pdf", small_pdf + b"\n")  # same pages, ingested once here
    document.refresh_from_db()
    assert document.chunks_count == reference.chunks_count
    assert Chunk.objects.filter(document=document).count() == document.chunks_count


def test_a_stalled_ingest_is_picked_up_again(small_pdf: bytes):
    document = support.upload("criteria.pdf", small_pdf, enqueue=False).document
    Document.objects.filter(pk=document.pk).update(
        status="processing", heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    requeue_stalled.delay()
    support.wait_for(lambda: _status(document.pk) == "ready", timeout=120, message="re-ingest")


def test_a_bad_file_fails_in_the_worker_with_its_reason():
    document = support.upload(
        "locked.pdf", support.pdf_pages(support.UFC, [24], password="pw")
    ).document
    support.wait_for(lambda: _status(document.pk) == "failed", timeout=120, message="failure")
    document.refresh_from_db()
    assert "encrypted" in document.error


def _pool_children(worker) -> list[int]:
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text()
    return [int(pid) for pid in children.split()]


def test_a_worker_killed_mid_ingest_leaves_the_published_version_and_is_picked_up(
    celery_worker, small_pdf: bytes
):
    published = support.ingest("criteria.pdf", small_pdf)  # v1, searched
    searched = set(
        Chunk.objects.filter(document=published, searchable=True).values_list("pk", flat=True)
    )
    assert searched
    # v2 of the same file: 30 pages, long enough to be caught half way.
    document = support.upload(
        "criteria.pdf", support.pdf_pages(support.UFC, list(range(20, 50)))
    ).document
    support.wait_for(
        lambda: _status(document.pk) == "processing",
        timeout=60,
        interval=0.02,
        message="the ingest to start",
    )
    for pid in _pool_children(celery_worker):  # the process running the task, not the worker
        os.kill(pid, signal.SIGKILL)
    time.sleep(3)  # the message comes back (reject on worker lost); its claim stops it
    assert _status(document.pk) == "processing"
    published.refresh_from_db()
    assert published.is_current and published.status == "ready"
    assert searched == set(
        Chunk.objects.filter(document=published, searchable=True).values_list("pk", flat=True)
    )
    # Five minutes without a heartbeat later, the sweep gives it to a worker again.
    Document.objects.filter(pk=document.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    requeue_stalled.delay()
    support.wait_for(
        lambda: _status(document.pk) in {"ready", "failed"}, timeout=180, message="re-ingest"
    )
    document.refresh_from_db()
    assert document.status == "ready" and document.is_current, document.error
    assert document.ingest_attempt == 2 and document.ingest_stalls == 1
    assert Chunk.objects.filter(document=document).count() == document.chunks_count > 0
    assert set(Chunk.objects.filter(document=document).values_list("attempt", flat=True)) == {2}


def test_an_upload_while_the_broker_is_down_answers_and_is_ingested_once_it_is_back(
    embedded_redis, small_pdf: bytes
):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from apps.documents import services

    if embedded_redis is None:
        pytest.skip("REDIS_URL names a Redis this suite does not run")
    client = Client()
    client.force_login(support.make_user("sam", "smes"))
    embedded_redis.stop()
    try:
        response = client.post(
            "/documents/upload/",
            {"files": SimpleUploadedFile("criteria.pdf", small_pdf)},
            follow=True,
        )
        assert response.status_code == 200
        shown = " ".join(str(m) for m in response.context["messages"])
        assert "“criteria.pdf” is queued; its ingestion will start when the workers are back." in (
            shown
        )
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["broker"] == "unavailable"
    finally:
        embedded_redis.start()
    document = Document.objects.get(filename="criteria.pdf")
    assert document.status == "queued"
    # The sweep (every few minutes) sends its message again: here, as if the time had passed.
    assert services.documents_resend_queued(queued_for=timedelta(0)) == 1
    support.wait_for(
        lambda: _status(document.pk) in {"ready", "failed"},
        timeout=120,
        message="ingest after the outage",
    )
    document.refresh_from_db()
    assert document.status == "ready" and document.is_current, document.error
