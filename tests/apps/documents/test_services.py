from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.utils import timezone

from apps.documents import search_stats, services
from apps.documents.models import Chunk, Document, LexemeStat, Page
from apps.documents.selectors import search_chunks
from tests import support

pytestmark = pytest.mark.django_db


def test_ingest_records_pages_labels_sections_and_progress(small_pdf: bytes):
    document = support.ingest("UFC_3-410-01.pdf", small_pdf)
    assert document.status == Document.Status.READY, document.error
    assert document.is_current and document.version == 1
    assert (document.pages_total, document.pages_done) == (3, 3)
    assert document.title.startswith("UFC 3-410-01")  # from the PDF's metadata
    assert list(Page.objects.filter(document=document).values_list("number", "label")) == [
        (1, "13"),
        (2, "14"),
        (3, "15"),
    ]
    chunk = Chunk.objects.get(document=document, text__contains="forklift loading")
    assert (chunk.page_number, chunk.page_label, chunk.section) == (2, "14", "3-5.3.4")
    assert (
        Chunk.objects.filter(document=document, searchable=True).count()
        == document.chunks_count
        > 0
    )


def test_same_content_twice_makes_no_duplicate(small_pdf: bytes):
    first = support.ingest("a.pdf", small_pdf)
    again = support.upload("renamed.pdf", small_pdf, enqueue=False)
    assert not again.created and again.document.pk == first.pk
    assert Document.objects.count() == 1


def test_ingest_twice_does_the_work_once(small_pdf: bytes):
    document = support.ingest("a.pdf", small_pdf)
    count = Chunk.objects.count()
    assert services.document_ingest(document_id=document.pk).status == Document.Status.READY
    assert Chunk.objects.count() == count


def test_changed_file_with_same_name_becomes_a_new_version(small_pdf: bytes):
    old = support.ingest("criteria.pdf", small_pdf)
    new = support.ingest("criteria.pdf", support.pdf_pages(support.UFC, [36, 37]))
    old.refresh_from_db()
    assert (new.version, new.previous_version_id, new.is_current) == (2, old.pk, True)
    assert not old.is_current and old.status == Document.Status.READY
    assert not Chunk.objects.filter(document=old, searchable=True).exists()
    hits = search_chunks(query="warehouse forklift loading operations heating", k=10)
    assert hits and {hit.document_id for hit in hits} == {new.pk}


def test_old_version_stays_searched_until_the_new_one_is_ready(small_pdf: bytes):
    old = support.ingest("criteria.pdf", small_pdf)
    queued = support.upload(
        "criteria.pdf", support.pdf_pages(support.UFC, [36]), enqueue=False
    ).document
    assert queued.status == Document.Status.QUEUED and not queued.is_current
    assert {hit.document_id for hit in search_chunks(query="forklift", k=5)} == {old.pk}


def test_an_earlier_version_can_be_served_again(small_pdf: bytes):
    old = support.ingest("criteria.pdf", small_pdf)
    new = support.ingest("criteria.pdf", support.pdf_pages(support.UFC, [36]))
    services.document_make_current(document_id=old.pk)
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.is_current and not new.is_current
    assert {hit.document_id for hit in search_chunks(query="forklift", k=5)} == {old.pk}


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.pdf", b"", "The file is empty."),
        (
            "photo.pdf",
            b"\x89PNG\r\n\x1a\n" + b"x" * 100,
            "named .pdf but its content is a PNG image",
        ),
        ("archive.md", b"PK\x03\x04" + b"x" * 100, "named .md but its content is a ZIP archive"),
        ("report.docx", b"PK\x03\x04", "'.docx' files are not supported"),
    ],
)
def test_refused_uploads_get_a_record_with_the_reason(
    small_pdf: bytes, name: str, data: bytes, message: str
):
    good = support.ingest("good.pdf", small_pdf)
    result = support.upload(name, data, enqueue=False)
    document = result.document
    assert document.status == Document.Status.FAILED
    assert message in document.error
    assert not document.file  # nothing stored
    good.refresh_from_db()
    assert good.is_current and search_chunks(query="forklift", k=3)


def test_oversized_upload_is_refused(settings, small_pdf: bytes):
    settings.DOCUMENT_MAX_BYTES = 50_000
    document = support.upload("big.pdf", small_pdf, enqueue=False).document
    assert document.status == Document.Status.FAILED
    assert "larger than the 0 MB limit" in document.error or "larger than" in document.error
    assert document.sha256 is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (support.pdf_pages(support.UFC, [24], password="secret"), "encrypted with a password"),
        (support.UFC.read_bytes()[:150_000], "damaged and cannot be opened"),
    ],
    ids=["encrypted", "corrupt"],
)
def test_unreadable_pdf_fails_with_reason_and_loses_nothing(
    small_pdf: bytes, data: bytes, message: str
):
    good = support.ingest("good.pdf", small_pdf)
    document = support.ingest("bad.pdf", data)
    assert document.status == Document.Status.FAILED
    assert message in document.error
    assert not Chunk.objects.filter(document=document).exists()
    good.refresh_from_db()
    assert good.is_current and good.chunks_count == Chunk.objects.filter(document=good).count()


def test_too_many_pages_is_refused(settings, small_pdf: bytes):
    settings.DOCUMENT_MAX_PAGES = 2
    document = support.ingest("a.pdf", small_pdf)
    assert document.status == Document.Status.FAILED
    assert "3 pages, over the limit of 2" in document.error


@pytest.mark.usefixtures("ocr_off")
def test_scanned_pages_are_counted_and_searchable_pages_kept():
    document = support.ingest("appendix.pdf", support.pdf_pages(support.UFC, [89, 90, 91]))
    assert document.status == Document.Status.READY
    assert document.pages_without_text == 2
    assert list(document.pages.filter(has_text_layer=False).values_list("number", flat=True)) == [
        2,
        3,
    ]


@pytest.mark.usefixtures("ocr_off")
def test_a_document_with_only_scans_fails_clearly():
    document = support.ingest("scans.pdf", support.pdf_pages(support.UFC, [91, 92]))
    assert document.status == Document.Status.FAILED
    assert "no text could be found" in document.error.lower()


@pytest.mark.usefixtures("ocr_on")
def test_scanned_pages_are_read_by_ocr_and_searchable():
    # UFC 3-410-01 page 25 has a text layer; page 92, an enclosure's title page, is a scan.
    document = support.ingest("appendix.pdf", support.pdf_pages(support.UFC, [24, 91]))
    assert document.status == Document.Status.READY and document.pages_without_text == 0
    scanned = document.pages.get(number=2)
    assert (scanned.has_text_layer, scanned.ocr) == (False, True)
    hits = search_chunks(query="Islanded/Decentralized Utility Options", k=3)
    assert hits and (hits[0].document_id, hits[0].page_number) == (document.pk, 2)
    assert "Decentralized Utility Options" in hits[0].text


class _FailingEmbedder:
    """Embeds the first batch, then fails: an ingest that dies halfway."""

    name, dimensions = "fake", 384

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.calls > 1:
            raise MemoryError("out of memory while embedding")
        return np.full((len(texts), 384), 1 / np.sqrt(384), dtype=np.float32)


def test_failure_halfway_keeps_the_previous_version(
    monkeypatch: pytest.MonkeyPatch, small_pdf: bytes
):
    old = support.ingest("criteria.pdf", small_pdf)
    monkeypatch.setattr(services, "EMBED_BATCH_CHUNKS", 2)
    monkeypatch.setattr(services, "get_embedder", _FailingEmbedder)
    new = support.ingest("criteria.pdf", support.pdf_pages(support.UFC, [36, 37, 38]))
    assert new.status == Document.Status.FAILED
    assert "MemoryError" in new.error
    assert (
        not Chunk.objects.filter(document=new).exists()
        and not Page.objects.filter(document=new).exists()
    )
    old.refresh_from_db()
    assert (
        old.is_current
        and Chunk.objects.filter(document=old, searchable=True).count() == old.chunks_count
    )


def test_requeue_only_touches_failed_or_stalled(small_pdf: bytes):
    ready = support.ingest("a.pdf", small_pdf)
    assert not services.document_requeue(document_id=ready.pk)
    failed = support.ingest("b.pdf", support.UFC.read_bytes()[:150_000])
    with connection.cursor():
        assert services.document_requeue(document_id=failed.pk)
    failed.refresh_from_db()
    assert failed.status == Document.Status.QUEUED and failed.error == ""


def test_lexeme_statistics_follow_the_searched_versions(small_pdf: bytes):
    support.ingest("criteria.pdf", small_pdf)
    total = LexemeStat.objects.get(lexeme=LexemeStat.TOTAL).chunks
    assert total == Chunk.objects.filter(searchable=True).count()
    assert LexemeStat.objects.get(lexeme="forklift").chunks == 1
    support.ingest("criteria.pdf", support.pdf_pages(support.UFC, [36]))  # supersedes it
    assert not LexemeStat.objects.filter(lexeme="forklift").exists()
    counted = dict(LexemeStat.objects.values_list("lexeme", "chunks"))
    search_stats.lexeme_stats_rebuild()
    assert dict(LexemeStat.objects.values_list("lexeme", "chunks")) == counted


def test_deleting_the_searched_version_updates_statistics_and_storage(
    small_pdf: bytes, django_capture_on_commit_callbacks
):
    document = support.ingest("criteria.pdf", small_pdf)
    path = document.file.path
    with django_capture_on_commit_callbacks(execute=True):
        services.document_delete(document_id=document.pk)
    assert not Document.objects.exists() and not Chunk.objects.exists()
    assert LexemeStat.objects.get(lexeme=LexemeStat.TOTAL).chunks == 0
    assert not LexemeStat.objects.exclude(lexeme=LexemeStat.TOTAL).exists()
    assert not Path(path).exists()


class _TakenOverEmbedder:
    """While embedding its first batch, the ingest "stalls": the sweep re-queues the
    document and a second attempt ingests and publishes it. Then this first attempt goes
    on (``then="continue"``) or fails (``then="fail"``)."""

    name, dimensions = "fake", 384

    def __init__(self, real, *, then: str) -> None:
        self.real, self.then, self.taken_over = real, then, False

    def embed(self, texts: list[str]) -> np.ndarray:
        if not self.taken_over:
            self.taken_over = True
            document = Document.objects.get(status=Document.Status.PROCESSING)
            Document.objects.filter(pk=document.pk).update(
                heartbeat_at=timezone.now() - timedelta(hours=1)
            )
            assert services.documents_requeue_stalled() == 1
            second = services.document_ingest(document_id=document.pk)
            assert second.status == Document.Status.READY, second.error
            if self.then == "fail":
                raise MemoryError("out of memory while embedding")
        return self.real.embed(texts)


@pytest.mark.parametrize("then", ["continue", "fail"])
def test_an_attempt_that_lost_its_claim_leaves_the_published_version_alone(
    monkeypatch: pytest.MonkeyPatch, small_pdf: bytes, then: str
):
    real = services.get_embedder()
    embedder = _TakenOverEmbedder(real, then=then)
    monkeypatch.setattr(
        services, "get_embedder", lambda: embedder if not embedder.taken_over else real
    )
    document = support.ingest("criteria.pdf", small_pdf)  # the first attempt ends here
    assert embedder.taken_over
    assert document.status == Document.Status.READY and document.is_current, document.error
    assert document.ingest_attempt == 2 and document.error == ""
    chunks = Chunk.objects.filter(document=document)
    assert chunks.count() == chunks.filter(searchable=True).count() == document.chunks_count > 0
    assert set(chunks.values_list("attempt", flat=True)) == {2}
    assert Page.objects.filter(document=document).count() == 3
    assert search_chunks(query="forklift loading", k=3)


@pytest.mark.usefixtures("ocr_on")
def test_ocr_moves_the_heartbeat_every_page(monkeypatch: pytest.MonkeyPatch):
    beats: list[datetime] = []
    real_ocr = services.tesseract_ocr

    def watched_ocr():
        recognise = real_ocr()

        def read(path: Path, index: int) -> str:
            beat = Document.objects.values_list("heartbeat_at", flat=True).get()
            assert beat is not None  # set when the ingest started
            beats.append(beat)
            return recognise(path, index)

        return read

    monkeypatch.setattr(services, "tesseract_ocr", watched_ocr)
    document = support.ingest("scans.pdf", support.pdf_pages(support.UFC, [91, 92]))
    assert document.status == Document.Status.READY, document.error
    assert document.started_at is not None
    assert len(beats) == 2 and document.started_at < beats[0] < beats[1]


def test_a_file_that_keeps_killing_its_worker_fails_with_the_reason(settings, small_pdf: bytes):
    settings.DOCUMENT_INGEST_MAX_STALLS = 3
    document = support.upload("killer.pdf", small_pdf, enqueue=False).document
    queued_again = []
    for _ in range(3):  # a worker claims it and dies, three times
        Document.objects.filter(pk=document.pk).update(
            status=Document.Status.PROCESSING, heartbeat_at=timezone.now() - timedelta(hours=1)
        )
        queued_again.append(services.documents_requeue_stalled())
    assert queued_again == [1, 1, 0]
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert document.error == (
        "Its ingest stopped 3 times (the worker died): the file may be too large or malformed."
    )
    # An admin's retry starts the count again.
    assert services.document_requeue(document_id=document.pk)
    document.refresh_from_db()
    assert (document.status, document.ingest_stalls) == (Document.Status.QUEUED, 0)


class _SlowEmbedder:
    """Celery raises SoftTimeLimitExceeded inside the task when its soft limit passes."""

    name, dimensions = "fake", 384

    def embed(self, texts: list[str]) -> np.ndarray:
        raise SoftTimeLimitExceeded()


def test_an_ingest_over_its_time_limit_fails_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, settings, small_pdf: bytes
):
    settings.DOCUMENT_INGEST_TIME_LIMIT = 1800
    monkeypatch.setattr(services, "get_embedder", _SlowEmbedder)
    document = support.ingest("slow.pdf", small_pdf)
    assert document.status == Document.Status.FAILED
    assert document.error.startswith("Ingestion took longer than the 30-minute limit")
    assert not Page.objects.filter(document=document).exists()


def test_documents_left_queued_are_sent_again_and_an_admin_retry_takes_them(
    small_pdf: bytes,
):
    stranded = support.upload("stranded.pdf", small_pdf, enqueue=False).document
    fresh = support.upload("fresh.md", b"# Fresh\n\nText.\n", enqueue=False).document
    Document.objects.filter(pk=stranded.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert services.documents_resend_queued(queued_for=timedelta(minutes=15)) == 1
    assert services.documents_resend_queued(queued_for=timedelta(minutes=15)) == 0  # just sent
    assert services.document_requeue(document_id=fresh.pk)  # the admin's retry of a queued one
    assert services.document_ingest(document_id=stranded.pk).status == Document.Status.READY
