"""A 100,000-chunk bench library made from the real one, for the search benchmarks.

Each synthetic chunk's vector is a noisy mix of two real embeddings, normalised, so the
vectors cluster the way real ones do; its text is a few sentences drawn from real passages,
so the full-text side sees realistic term statistics. Rows go in with COPY under a few
synthetic documents, and the HNSW index is dropped first and built on the loaded table
(much faster than inserting into it row by row).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable

import numpy as np
from _common import progress, searchable_chunks
from django.db import connection, transaction

from apps.documents import search_stats, services
from apps.documents.models import Chunk, Document

LIBRARY_CHUNKS, SYNTHETIC_DOCUMENTS, NOISE_SIGMA = 100_000, 8, 0.05
SYNTHETIC_PREFIX = "bench-synthetic-"
# Exactly the index of migration 0002 (Chunk.Meta.indexes).
HNSW_INDEX = (
    "CREATE INDEX chunk_embedding_hnsw ON documents_chunk USING hnsw "
    "(embedding vector_cosine_ops) WITH (m=16, ef_construction=64) WHERE searchable"
)
COPY_SQL = (
    "COPY documents_chunk (document_id, ordinal, page_number, page_label, section, "
    "section_title, text, embedding, searchable) FROM STDIN"
)
_SENTENCE = re.compile(r"(?<=[.;:!?])\s+|\n+")


def sentences_of(texts: Iterable[str]) -> list[str]:
    return [s.strip() for t in texts for s in _SENTENCE.split(t) if len(s.split()) >= 6]


def library_ready() -> bool:
    """Whether the bench database already holds the full library with its HNSW index."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'chunk_embedding_hnsw'")
        indexed = cursor.fetchone() is not None
    return indexed and searchable_chunks() >= LIBRARY_CHUNKS


def build_library() -> None:
    """Tops the library up to LIBRARY_CHUNKS searchable chunks with synthetic documents."""
    Document.objects.filter(filename__startswith=SYNTHETIC_PREFIX).delete()
    real = Chunk.objects.filter(searchable=True).order_by("id")
    headings = list(real.values_list("section", "section_title"))
    embeddings = real.values_list("embedding", flat=True)
    vectors = np.stack([np.asarray(v, dtype=np.float32) for v in embeddings])
    sentences = sentences_of(real.values_list("text", flat=True))
    missing = LIBRARY_CHUNKS - len(headings)
    progress(f"synthesising {missing} chunks from {len(headings)} real ones")
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")
    rng, pick = np.random.default_rng(7), random.Random(7)
    for n in range(1, SYNTHETIC_DOCUMENTS + 1):
        size = missing // SYNTHETIC_DOCUMENTS + (n <= missing % SYNTHETIC_DOCUMENTS)
        document = Document.objects.create(
            title=f"Synthetic bench corpus {n}",
            filename=f"{SYNTHETIC_PREFIX}{n}.txt",
            sha256=f"{SYNTHETIC_PREFIX}{n}",
            kind=Document.Kind.TEXT,
            status=Document.Status.READY,
            is_current=True,
            chunks_count=size,
        )
        first, second = rng.integers(len(headings), size=(2, size))
        mixed = (
            rng.uniform(0.5, 1.0, (size, 1)) * vectors[first]
            + rng.uniform(0.0, 0.5, (size, 1)) * vectors[second]
            + rng.normal(0.0, NOISE_SIGMA, (size, vectors.shape[1]))
        )
        mixed = np.round(mixed / np.linalg.norm(mixed, axis=1, keepdims=True), 6).tolist()
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.cursor.copy(COPY_SQL) as copy,
        ):
            for ordinal, (source, vector) in enumerate(zip(first, mixed, strict=True)):
                section, title = headings[source]
                text = " ".join(pick.choices(sentences, k=pick.randint(3, 6)))
                literal = "[" + ",".join(map(repr, vector)) + "]"
                page = pick.randint(1, 500)
                copy.write_row(
                    (document.pk, ordinal, page, "", section, title, text, literal, True)
                )
        Chunk.objects.filter(document=document).update(
            search_vector=services.chunk_search_vector(document.title)
        )
        progress(f"loaded {document.filename}: {size} chunks")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(HNSW_INDEX)
        cursor.execute("RESET maintenance_work_mem")
    progress(f"HNSW index built in {time.perf_counter() - started:.0f}s")
    lexemes = search_stats.lexeme_stats_rebuild()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE documents_chunk")
    progress(f"lexeme statistics rebuilt ({lexemes} lexemes), table vacuumed")
