"""Writes to the document library: upload, ingest, versioning, re-queueing."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.postgres.search import SearchVector
from django.core.files import File
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Max, Q, QuerySet, Value
from django.db.models.expressions import CombinedExpression
from django.utils import timezone
from django.utils.text import get_valid_filename
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from apps.documents.embedding import get_embedder, passage_text
from apps.documents.models import Chunk, Document, Page, SentenceVector
from apps.documents.search_stats import lexeme_stats_apply
from ml.chunking import chunk_pages
from ml.embeddings import Embedder
from ml.focus import sentence_texts
from ml.parsing import (
    EXTENSIONS,
    DocumentError,
    detect_kind,
    extract_pages,
    read_title,
    tesseract_ocr,
)

logger = logging.getLogger(__name__)

# Transient failures: the ingest goes back to the queue instead of failing the document.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
# What sending a task raises while the broker is down.
BROKER_ERRORS = (KombuOperationalError, RedisError, OSError)
EMBED_BATCH_CHUNKS = 64
STALLED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class UploadResult:
    document: Document
    created: bool
    # The ingest message could not be sent (broker down): the document stays queued and
    # the queued-ingest sweep sends it once the broker is back.
    send_failed: bool = False


def document_upload(
    *,
    filename: str,
    chunks: Iterable[bytes],
    uploaded_by: User | None = None,
    title: str = "",
    enqueue: bool = True,
) -> UploadResult:
    """Stores an uploaded file as a new document version and queues it for ingestion.

    The same content twice returns the existing document (``created`` False). A file that
    cannot be accepted (empty, oversized, wrong type) still gets a record with a clear
    ``error`` so the uploader sees why; it is not stored and nothing else changes.
    Ingestion is queued after the transaction commits; a broker that is down then does
    not turn the upload into an error (see ``send_failed``).
    """
    name = Path(filename).name or "unnamed"
    spool_dir = settings.VAR_DIR / "tmp"
    spool_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    oversized = False
    with tempfile.NamedTemporaryFile(dir=spool_dir, delete=True) as spool:
        head = b""
        for piece in chunks:
            size += len(piece)
            if size > settings.DOCUMENT_MAX_BYTES:
                oversized = True
                break
            if len(head) < 4096:
                head += piece[: 4096 - len(head)]
            digest.update(piece)
            spool.write(piece)
        spool.flush()
        sha256 = None if oversized else digest.hexdigest()

        with transaction.atomic():
            if sha256 is not None:
                existing = Document.objects.filter(sha256=sha256).first()
                if existing is not None:
                    return UploadResult(existing, created=False)
            document = _new_version(name=name, title=title, uploaded_by=uploaded_by)
            document.size_bytes = size
            document.sha256 = sha256
            try:
                if sha256 is None:  # oversized
                    limit_mb = settings.DOCUMENT_MAX_BYTES / (1024 * 1024)
                    raise DocumentError(f"the file is larger than the {limit_mb:.0f} MB limit")
                document.kind = detect_kind(name, head)
            except DocumentError as exc:
                document.status = Document.Status.FAILED
                document.error = _sentence(str(exc))
                document.finished_at = timezone.now()
                document.save()
                return UploadResult(document, created=True)
            spool.seek(0)
            document.file.save(
                f"{sha256[:2]}/{sha256}/{get_valid_filename(name)}", File(spool), save=False
            )
            document.status = Document.Status.QUEUED
            document.heartbeat_at = timezone.now()  # when it was queued, for the sweep
            document.save()
            sent: list[bool] = []
            if enqueue:
                _enqueue_ingest(document.pk, sent=sent)
    return UploadResult(document, created=True, send_failed=sent == [False])


def _new_version(*, name: str, title: str, uploaded_by: User | None) -> Document:
    previous = (
        Document.objects.select_for_update().filter(filename=name).order_by("-version").first()
    )
    latest = Document.objects.filter(filename=name).aggregate(v=Max("version"))["v"] or 0
    return Document(
        filename=name,
        title=title or (previous.title if previous else _title_from_name(name)),
        version=latest + 1,
        previous_version=previous,
        uploaded_by=uploaded_by,
    )


def _title_from_name(name: str) -> str:
    return Path(name).stem.replace("_", " ").replace("-", " ").strip() or name


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def _enqueue_ingest(document_id: int, *, sent: list[bool] | None = None) -> None:
    """Sends the ingest message once the transaction commits. With the broker down the
    failure is logged, not raised (the commit is done; an error now would only turn the
    request into a 500): the document stays queued and the queued-ingest sweep sends it
    again. ``sent`` receives whether it went, where the caller wants to tell the user."""

    def send() -> None:
        from workers.documents import ingest_document

        try:
            ingest_document.delay(document_id)
        except BROKER_ERRORS:
            logger.warning(
                "the ingest of document %s could not be queued (broker down); "
                "the queued-ingest sweep sends it again",
                document_id,
                exc_info=True,
            )
            if sent is not None:
                sent.append(False)
            return
        if sent is not None:
            sent.append(True)

    transaction.on_commit(send)


class ClaimLost(Exception):
    """The ingest's claim moved on (the sweep or an admin re-queued the document)."""


@dataclass(frozen=True)
class IngestClaim:
    """The right to ingest one document, held by one attempt (the owner token)."""

    document_id: int
    attempt: int

    def owned(self) -> QuerySet[Document]:
        return Document.objects.filter(
            pk=self.document_id, ingest_attempt=self.attempt, status=Document.Status.PROCESSING
        )

    def beat(self, **progress: object) -> None:
        """Moves the heartbeat (and saves ``progress``) while the claim is still this
        attempt's; raises ClaimLost otherwise, so a worker that lost it stops writing."""
        if not self.owned().update(heartbeat_at=timezone.now(), **progress):
            raise ClaimLost


def document_ingest(*, document_id: int) -> Document:
    """Parses, chunks and embeds one queued document, then makes it the searched version.

    Safe to run twice: only the call that moves the row from queued to processing does the
    work, and that claim carries an attempt number. Every page and chunk is written under
    it, and the heartbeat (once per OCR'd page and per embedded batch) checks it: an
    attempt that lost its claim (the stalled-ingest sweep gave the document to another
    worker) stops and deletes only its own rows. On a bad file the document is marked
    failed with the reason; the previous version stays searchable throughout.
    """
    with transaction.atomic():
        document = (
            Document.objects.select_for_update()
            .filter(pk=document_id, status=Document.Status.QUEUED)
            .first()
        )
        if document is not None:
            now = timezone.now()
            document.status = Document.Status.PROCESSING
            document.ingest_attempt += 1
            document.started_at = document.heartbeat_at = now
            document.error = ""
            document.pages_done = 0
            document.save(
                update_fields=[
                    "status",
                    "ingest_attempt",
                    "started_at",
                    "heartbeat_at",
                    "error",
                    "pages_done",
                ]
            )
    if document is None:
        return Document.objects.get(pk=document_id)
    claim = IngestClaim(document_id=document.pk, attempt=document.ingest_attempt)
    try:
        _ingest(document, claim)
    except ClaimLost:
        logger.warning(
            "ingest attempt %s of document %s lost its claim; its rows are removed",
            claim.attempt,
            claim.document_id,
        )
        _discard_attempt(claim)
    except TRANSIENT_ERRORS:
        _discard_attempt(claim)
        claim.owned().update(status=Document.Status.QUEUED)
        raise
    except SoftTimeLimitExceeded:
        minutes = settings.DOCUMENT_INGEST_TIME_LIMIT / 60
        _fail(
            claim,
            f"Ingestion took longer than the {minutes:.0f}-minute limit: the file may be too "
            "large or malformed.",
        )
    except DocumentError as exc:
        _fail(claim, _sentence(str(exc)))
    except Exception as exc:
        logger.exception("ingest of document %s failed", document.pk)
        _fail(claim, f"Ingestion failed unexpectedly ({type(exc).__name__}: {exc}).")
    document.refresh_from_db()
    return document


def _beating(ocr: Callable[[Path, int], str], claim: IngestClaim) -> Callable[[Path, int], str]:
    """``ocr`` with a heartbeat before each page: one page can take a minute to read."""

    def recognise(path: Path, index: int) -> str:
        claim.beat()
        return ocr(path, index)

    return recognise


def _ingest(document: Document, claim: IngestClaim) -> None:
    if not document.file:
        raise DocumentError("the stored file is missing")
    path = Path(document.file.path)
    if not path.exists():
        raise DocumentError("the stored file is missing from the server's storage")
    ocr = tesseract_ocr() if settings.OCR_ENABLED else None
    pages = extract_pages(
        path,
        document.kind,
        max_pages=settings.DOCUMENT_MAX_PAGES,
        ocr=_beating(ocr, claim) if ocr is not None else None,
    )
    chunks = chunk_pages(pages, kind=document.kind)
    if not chunks:
        raise DocumentError("no text could be found in the document (a scan without OCR?)")
    title = read_title(path, document.kind)
    claim.beat(
        pages_total=len(pages),
        pages_without_text=sum(1 for page in pages if not page.has_text_layer and not page.ocr),
        **({"title": title} if title and document.version == 1 else {}),
    )
    Page.objects.bulk_create(
        Page(
            document=document,
            attempt=claim.attempt,
            number=page.number,
            label=page.label,
            char_count=len(page.text),
            has_text_layer=page.has_text_layer,
            ocr=page.ocr,
        )
        for page in pages
    )
    embedder = get_embedder()
    last_page = pages[-1].number
    for start in range(0, len(chunks), EMBED_BATCH_CHUNKS):
        batch = chunks[start : start + EMBED_BATCH_CHUNKS]
        vectors = embedder.embed(
            [
                passage_text(section=c.section, section_title=c.section_title, text=c.text)
                for c in batch
            ]
        )
        created = Chunk.objects.bulk_create(
            Chunk(
                document=document,
                attempt=claim.attempt,
                ordinal=c.ordinal,
                page_number=c.page_number,
                page_label=c.page_label,
                section=c.section[:200],
                section_title=c.section_title[:300],
                text=c.text,
                embedding=vector,
            )
            for c, vector in zip(batch, vectors, strict=True)
        )
        sentence_vectors_store(created, embedder=embedder)
        # Pages are done once every chunk of theirs is stored: all before the batch's last.
        done = last_page if start + EMBED_BATCH_CHUNKS >= len(chunks) else batch[-1].page_number - 1
        claim.beat(pages_done=done)
    _publish(claim, chunks_count=len(chunks), pages_total=len(pages))


def sentence_vectors_store(chunks: Sequence[Chunk], *, embedder: Embedder) -> int:
    """Embeds and stores the candidate sentences of ``chunks`` (what a focused prompt
    scores), skipping those stored already. Returns how many were stored."""
    have = set(
        SentenceVector.objects.filter(chunk__in=chunks, embedder=embedder.name).values_list(
            "chunk_id", "position"
        )
    )
    rows = [
        SentenceVector(chunk=chunk, position=n, text=text, embedder=embedder.name)
        for chunk in chunks
        for n, text in enumerate(sentence_texts(chunk.text))
        if (chunk.pk, n) not in have
    ]
    if not rows:
        return 0
    for row, vector in zip(rows, embedder.embed([r.text for r in rows]), strict=True):
        row.embedding = vector
    SentenceVector.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def sentence_vectors_fill(*, document_id: int | None = None, batch: int = 200) -> int:
    """Stores the sentence vectors that searchable chunks lack (a library ingested before
    they were stored, or under another embedder). Safe to run again; returns how many."""
    chunks = Chunk.objects.filter(searchable=True).order_by("pk")
    if document_id is not None:
        chunks = chunks.filter(document_id=document_id)
    embedder = get_embedder()
    stored, last = 0, 0
    while page := list(chunks.filter(pk__gt=last)[:batch]):
        stored += sentence_vectors_store(page, embedder=embedder)
        last = page[-1].pk
    return stored


def chunk_search_vector(title: str) -> CombinedExpression:
    """What full-text search indexes for a chunk: its section heading weighs most, then its
    text, then the document's title (so "NSPIRE ..." questions find NSPIRE passages)."""
    return (
        SearchVector("section", "section_title", weight="A", config="english")
        + SearchVector("text", weight="B", config="english")
        + SearchVector(Value(title), weight="C", config="english")
    )


@transaction.atomic
def _publish(claim: IngestClaim, *, chunks_count: int, pages_total: int) -> None:
    """Marks the document ready and, unless a newer version already is, the searched one.
    Only the attempt that still holds the claim publishes; rows other attempts left behind
    (a worker that died, or one that lost its claim and has not noticed yet) go."""
    document = claim.owned().select_for_update().first()
    if document is None:
        raise ClaimLost
    Chunk.objects.filter(document=document).exclude(attempt=claim.attempt).delete()
    Page.objects.filter(document=document).exclude(attempt=claim.attempt).delete()
    others = _current_others(document)
    # A newer version that finished first stays the searched one.
    becomes_current = not others.filter(version__gt=document.version).exists()
    # One pass over the new chunks: search vector and searchability together.
    Chunk.objects.filter(document=document).update(
        search_vector=chunk_search_vector(document.title), searchable=becomes_current
    )
    document.status = Document.Status.READY
    document.chunks_count = chunks_count
    document.pages_total = pages_total
    document.pages_done = pages_total
    document.finished_at = timezone.now()
    document.save()
    if becomes_current:
        _switch_current(document, others)


def _current_others(document: Document) -> QuerySet[Document]:
    return (
        Document.objects.select_for_update()
        .filter(filename=document.filename, is_current=True)
        .exclude(pk=document.pk)
    )


def _switch_current(document: Document, others: QuerySet[Document]) -> None:
    """Makes ``document`` (whose chunks are searchable) the searched version instead of
    ``others``; inside a transaction."""
    superseded = list(others.values_list("pk", flat=True))
    Chunk.objects.filter(document__in=superseded).update(searchable=False)
    others.update(is_current=False)
    Document.objects.filter(pk=document.pk).update(is_current=True)
    lexeme_stats_apply(added=[document.pk], removed=superseded)


def _discard_attempt(claim: IngestClaim) -> None:
    """Deletes the pages and chunks this attempt wrote, and nothing else."""
    Chunk.objects.filter(document_id=claim.document_id, attempt=claim.attempt).delete()
    Page.objects.filter(document_id=claim.document_id, attempt=claim.attempt).delete()


@transaction.atomic
def _fail(claim: IngestClaim, message: str) -> None:
    """Fails the document with ``message`` if this attempt still holds its claim; either way
    only this attempt's rows are removed, so a version another attempt published stays."""
    _discard_attempt(claim)
    claim.owned().update(
        status=Document.Status.FAILED,
        error=message,
        pages_done=0,
        chunks_count=0,
        finished_at=timezone.now(),
    )


def document_requeue(*, document_id: int) -> bool:
    """Puts a failed, stalled or stranded document back in the ingest queue (an admin's
    retry: the count of stalls starts again). True if it was queued."""
    with transaction.atomic():
        updated = (
            Document.objects.filter(
                pk=document_id,
                status__in=[
                    Document.Status.FAILED,
                    Document.Status.PROCESSING,
                    Document.Status.QUEUED,
                ],
            )
            .exclude(file="")
            .update(
                status=Document.Status.QUEUED,
                error="",
                pages_done=0,
                ingest_stalls=0,
                heartbeat_at=timezone.now(),
            )
        )
        if updated:
            _enqueue_ingest(document_id)
    return bool(updated)


def documents_requeue_stalled(*, stalled_after: timedelta = STALLED_AFTER) -> int:
    """Re-queues documents whose ingest stopped sending heartbeats (the worker died).

    A document whose ingest stopped ``DOCUMENT_INGEST_MAX_STALLS`` times fails with the
    reason instead: a file that kills its worker would otherwise loop for ever. Returns how
    many were queued again."""
    cutoff = timezone.now() - stalled_after
    stalled = list(
        Document.objects.filter(
            status=Document.Status.PROCESSING, heartbeat_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    return sum(_requeue_stalled(document_id=pk, cutoff=cutoff) for pk in stalled)


def documents_resend_queued(*, queued_for: timedelta) -> int:
    """Sends the ingest message again for documents queued longer than ``queued_for``: its
    message was lost (the broker was down when it was sent, or lost its data). A message
    that was only waiting behind others becomes a duplicate, which the claim makes a
    no-op. Returns how many were sent."""
    cutoff = timezone.now() - queued_for
    with transaction.atomic():
        waiting = list(
            Document.objects.select_for_update(skip_locked=True)
            .filter(
                Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at=None, created_at__lt=cutoff),
                status=Document.Status.QUEUED,
            )
            .exclude(file="")
            .values_list("pk", flat=True)
        )
        Document.objects.filter(pk__in=waiting).update(heartbeat_at=timezone.now())
        for pk in waiting:
            _enqueue_ingest(pk)
    return len(waiting)


@transaction.atomic
def _requeue_stalled(*, document_id: int, cutoff: datetime) -> bool:
    document = (
        Document.objects.select_for_update()
        .filter(pk=document_id, status=Document.Status.PROCESSING, heartbeat_at__lt=cutoff)
        .first()
    )
    if document is None:  # it moved on since the list was read
        return False
    document.ingest_stalls += 1
    document.pages_done = 0
    if document.ingest_stalls >= settings.DOCUMENT_INGEST_MAX_STALLS:
        document.status = Document.Status.FAILED
        document.error = (
            f"Its ingest stopped {document.ingest_stalls} times (the worker died): the file "
            "may be too large or malformed."
        )
        document.finished_at = timezone.now()
        document.save()
        # Not ready, so none of its rows is searched: leftovers of every dead attempt go.
        Chunk.objects.filter(document=document).delete()
        Page.objects.filter(document=document).delete()
        return False
    document.status = Document.Status.QUEUED
    document.error = ""
    document.heartbeat_at = timezone.now()  # now: when it was queued again
    document.save()
    _enqueue_ingest(document.pk)
    return True


def document_make_current(*, document_id: int) -> None:
    """Serves an earlier ready version again (a rollback of a file's content)."""
    with transaction.atomic():
        document = Document.objects.select_for_update().get(pk=document_id)
        if document.status != Document.Status.READY:
            raise ValueError("only a ready version can be made current")
        Chunk.objects.filter(document=document).update(searchable=True)
        _switch_current(document, _current_others(document))


def corpus_ingest_first_run(*, folder: Path) -> int:
    """Queues every supported file of ``folder`` when the library is still empty.

    Used on a fresh instance to load the demo corpus; returns how many were queued.
    """
    if Document.objects.exists() or not folder.is_dir():
        return 0
    queued = 0
    for path in sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS
    ):
        with path.open("rb") as handle:
            result = document_upload(
                filename=path.name, chunks=iter(partial(handle.read, 1024 * 1024), b"")
            )
        queued += result.created and result.document.status == Document.Status.QUEUED
    return queued


@transaction.atomic
def document_delete(*, document_id: int) -> None:
    """Deletes one version with its pages, chunks and stored file. Deleting the searched
    version leaves the file without one until another version is made current."""
    document = Document.objects.select_for_update().filter(pk=document_id).first()
    if document is None:
        return
    if document.is_current:
        lexeme_stats_apply(added=[], removed=[document.pk])
    stored = document.file.name if document.file else ""
    document.delete()
    if stored and not Document.objects.filter(file=stored).exists():
        transaction.on_commit(lambda: document.file.storage.delete(stored))
