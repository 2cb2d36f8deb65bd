from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from pgvector.django import HnswIndex, VectorField

EMBEDDING_DIMENSIONS = 384


class Document(models.Model):
    """One version of one file. A changed file with the same name is a new Document row
    whose ``previous_version`` points at the old one; only ``is_current`` rows are searched."""

    class Kind(models.TextChoices):
        PDF = "pdf", "PDF"
        MARKDOWN = "markdown", "Markdown"
        TEXT = "text", "Plain text"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    title = models.CharField(max_length=300)
    filename = models.CharField(
        max_length=255, db_index=True, help_text="Versions share a file name."
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, blank=True)
    sha256 = models.CharField(max_length=64, unique=True, null=True, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    file = models.FileField(upload_to="documents/", max_length=500, blank=True)
    version = models.PositiveIntegerField(default=1)
    previous_version = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_versions"
    )
    is_current = models.BooleanField(default=False, help_text="The version that search uses.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    pages_total = models.PositiveIntegerField(default=0)
    pages_done = models.PositiveIntegerField(default=0)
    pages_without_text = models.PositiveIntegerField(default=0)
    chunks_count = models.PositiveIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The owner token of the ingest that holds the claim: each claim takes the next number,
    # and a worker writes, publishes or cleans up only while the row still carries its own.
    ingest_attempt = models.PositiveIntegerField(default=0)
    # How many times an ingest stopped sending heartbeats (its worker died) since the last
    # upload or manual retry; at INGEST_MAX_STALLS the document fails instead of looping.
    ingest_stalls = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["title", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["filename"],
                condition=Q(is_current=True),
                name="one_current_version_per_file",
            ),
            models.UniqueConstraint(fields=["filename", "version"], name="unique_version_per_file"),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.READY:
            return 100
        if not self.pages_total:
            return 0
        return min(100, round(100 * self.pages_done / self.pages_total))

    @property
    def is_paged(self) -> bool:
        return self.kind == self.Kind.PDF


class Page(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="pages")
    number = models.PositiveIntegerField(help_text="1-based page index, as a PDF viewer shows it.")
    label = models.CharField(max_length=32, blank=True, help_text="The printed page number.")
    char_count = models.PositiveIntegerField(default=0)
    has_text_layer = models.BooleanField(default=True)
    ocr = models.BooleanField(default=False, help_text="Text recognised from the page image.")
    # The ingest attempt that wrote the row (Document.ingest_attempt), so that a worker
    # that lost its claim deletes only its own rows, never another attempt's.
    attempt = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["document", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["document", "attempt", "number"], name="unique_page_number"
            )
        ]

    def __str__(self) -> str:
        return f"{self.document.title} p.{self.number}"


class Chunk(models.Model):
    """A passage of one page, with what a citation needs. Never spans two pages."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    page_number = models.PositiveIntegerField()
    page_label = models.CharField(max_length=32, blank=True)
    section = models.CharField(max_length=200, blank=True)
    section_title = models.CharField(max_length=300, blank=True)
    text = models.TextField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    search_vector = SearchVectorField(null=True)
    # Denormalised from the document so both indexes can be partial: superseded versions
    # and half-ingested documents are never searched.
    searchable = models.BooleanField(default=False)
    attempt = models.PositiveIntegerField(default=0)  # as Page.attempt

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [
            models.UniqueConstraint(
                fields=["document", "attempt", "ordinal"], name="unique_chunk_ordinal"
            )
        ]
        indexes = [
            HnswIndex(
                name="chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
                condition=Q(searchable=True),
            ),
            GinIndex(
                name="chunk_search_vector_gin",
                fields=["search_vector"],
                condition=Q(searchable=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.document.title} p.{self.page_number} #{self.ordinal}"


class LexemeStat(models.Model):
    """How many searchable chunks contain each lexeme: the document frequencies behind the
    IDF weighting of full-text matches. The row with the empty lexeme holds the total."""

    TOTAL = ""

    lexeme = models.TextField(primary_key=True, blank=True)
    chunks = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.lexeme or '(total)'}: {self.chunks}"


class SentenceVector(models.Model):
    """The embedding of one candidate sentence of a chunk (``ml.focus.sentence_texts``),
    computed at ingest so that focusing a prompt on the passages' best sentences embeds only
    the question. ``embedder`` names the model it came from: another one finds none."""

    chunk = models.ForeignKey(Chunk, on_delete=models.CASCADE, related_name="sentence_vectors")
    position = models.PositiveIntegerField()
    text = models.TextField()
    embedder = models.CharField(max_length=200)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)

    class Meta:
        ordering = ["chunk", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["chunk", "embedder", "position"], name="unique_sentence_vector"
            )
        ]

    def __str__(self) -> str:
        return f"{self.chunk_id}.{self.position}: {self.text[:60]}"
