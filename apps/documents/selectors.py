"""Reads of the document library. Every vector and full-text query lives here."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet

from apps.documents.embedding import remembering_embedder
from apps.documents.models import Chunk, Document, Page, SentenceVector
from ml.parsing import tesseract_ocr

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

RRF_K = 60  # the constant of reciprocal rank fusion; 60 is the value from the original paper
CANDIDATES = 50  # how deep each ranking goes before fusion
# Full-text candidates come from the query's rarest words, whose passages may add up to at
# most this share of the library (or SEED_ROWS, whichever is larger).
SEED_SHARE = 0.02
SEED_ROWS = 300
MAX_QUERY_CHARS = 1000
_MARK_START, _MARK_STOP = "\x02", "\x03"


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    document_id: int
    document_title: str
    filename: str
    kind: str
    page_number: int
    page_label: str
    section: str
    section_title: str
    text: str
    score: float
    similarity: float  # cosine similarity of the passage to the query
    vector_rank: int | None
    text_rank: int | None
    headline_html: str

    def as_json(self) -> dict[str, object]:
        """The stable shape that ``manage.py search --json`` prints."""
        return {
            "document": self.document_title,
            "filename": self.filename,
            "page": self.page_number,
            "page_label": self.page_label,
            "section": self.section,
            "score": round(self.score, 6),
            "text": self.text,
        }


def document_list() -> QuerySet[Document]:
    return Document.objects.select_related("uploaded_by", "previous_version").order_by(
        "title", "-version"
    )


def searchable_documents() -> QuerySet[Document]:
    return Document.objects.filter(is_current=True, status=Document.Status.READY).order_by("title")


def document_versions(document: Document) -> QuerySet[Document]:
    return Document.objects.filter(filename=document.filename).order_by("-version")


def pages_without_text(document: Document) -> QuerySet[Page]:
    return document.pages.filter(has_text_layer=False, ocr=False)


def pages_read_by_ocr(document: Document) -> QuerySet[Page]:
    return document.pages.filter(ocr=True).order_by("number")


def ocr_enabled() -> bool:
    """Whether ingestion reads scanned pages: OCR_ENABLED and Debian's tesseract on PATH."""
    return settings.OCR_ENABLED and tesseract_ocr() is not None


def document_chunks(document: Document) -> QuerySet[Chunk]:
    return document.chunks.order_by("ordinal").only(
        "id", "ordinal", "page_number", "page_label", "section", "section_title", "text"
    )


_SEARCH_SQL = """
WITH query_terms AS (
    SELECT DISTINCT lexeme
    FROM unnest(tsvector_to_array(to_tsvector('english', %(text)s))) AS lexeme
),
total AS (
    SELECT greatest(coalesce(max(chunks), 0), 1) AS n FROM documents_lexemestat WHERE lexeme = ''
),
terms AS (
    -- BM25's IDF; words in more than a quarter of all passages carry no signal.
    SELECT q.lexeme, s.chunks AS df,
           ln(1 + (total.n - s.chunks + 0.5) / (s.chunks + 0.5)) AS idf,
           to_tsquery('simple', quote_literal(q.lexeme)) AS tsq
    FROM query_terms q
    JOIN documents_lexemestat s ON s.lexeme = q.lexeme AND q.lexeme <> ''
    CROSS JOIN total
    WHERE s.chunks > 0 AND s.chunks <= greatest(total.n * 0.25, 20)
),
seed AS (
    -- Full-text candidates must hold one of the query's rarer words: its words from the
    -- rarest up, while their passages add up to a small budget (the rarest word alone may
    -- use four times that). Scoring every word over every match would read most of a large
    -- library for a question of common words, which the vector side serves better anyway.
    -- All the query's words then score the candidates.
    SELECT to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')) AS tsq
    FROM (
        SELECT lexeme, row_number() OVER (ORDER BY df, lexeme) AS position,
               sum(df) OVER (ORDER BY df, lexeme) AS cumulative
        FROM terms
    ) ranked, total
    WHERE cumulative <= greatest(total.n * %(seed_share)s, %(seed_rows)s)
       OR (position = 1 AND cumulative <= 4 * greatest(total.n * %(seed_share)s, %(seed_rows)s))
),
vector_hits AS (
    SELECT id, row_number() OVER (ORDER BY distance) AS rank
    FROM (
        SELECT c.id, c.embedding <=> %(vector)s::vector AS distance
        FROM documents_chunk c
        WHERE c.searchable {document_filter}
        ORDER BY c.embedding <=> %(vector)s::vector
        LIMIT %(candidates)s
    ) nearest
),
text_hits AS (
    SELECT id, row_number() OVER (ORDER BY text_score DESC, id) AS rank
    FROM (
        SELECT c.id, (SELECT sum(t.idf) FROM terms t WHERE c.search_vector @@ t.tsq) AS text_score
        FROM documents_chunk c, seed
        WHERE c.searchable AND c.search_vector @@ seed.tsq {document_filter}
        ORDER BY text_score DESC, c.id
        LIMIT %(candidates)s
    ) matching
),
fused AS (
    SELECT id, sum(1.0 / (%(rrf_k)s + rank)) AS score,
           min(rank) FILTER (WHERE source = 'v') AS vector_rank,
           min(rank) FILTER (WHERE source = 't') AS text_rank
    FROM (
        SELECT id, rank, 'v' AS source FROM vector_hits
        UNION ALL
        SELECT id, rank, 't' AS source FROM text_hits
    ) ranked
    GROUP BY id
    ORDER BY score DESC, id
    LIMIT %(k)s
),
headline_query AS (
    SELECT CASE WHEN count(*) = 0 THEN ''::tsquery
                ELSE to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')) END AS tsq
    FROM query_terms
)
SELECT c.id, c.document_id, d.title, d.filename, d.kind, c.page_number, c.page_label,
       c.section, c.section_title, c.text, fused.score, fused.vector_rank, fused.text_rank,
       1 - (c.embedding <=> %(vector)s::vector),
       ts_headline('english', c.text, headline_query.tsq,
                   'StartSel=' || chr(2) || ', StopSel=' || chr(3)
                   || ', MaxFragments=2, MaxWords=40, MinWords=15, FragmentDelimiter=" … "')
FROM fused
JOIN documents_chunk c ON c.id = fused.id
JOIN documents_document d ON d.id = c.document_id
CROSS JOIN headline_query
ORDER BY fused.score DESC, c.id
"""


def search_statement(
    *,
    query: str,
    vector: Sequence[float],
    k: int,
    document_ids: Sequence[int] | None = None,
    candidates: int = CANDIDATES,
) -> tuple[str, dict[str, Any]]:
    """The hybrid search SQL and its parameters (benchmarks EXPLAIN exactly this)."""
    params: dict[str, Any] = {
        "text": query,
        "vector": _vector_literal(vector),
        "candidates": max(candidates, k),
        "rrf_k": RRF_K,
        "k": k,
        "seed_share": SEED_SHARE,
        "seed_rows": SEED_ROWS,
    }
    document_filter = ""
    if document_ids:
        document_filter = "AND c.document_id = ANY(%(document_ids)s)"
        params["document_ids"] = list(document_ids)
    return _SEARCH_SQL.format(document_filter=document_filter), params


def search_session(cursor: CursorWrapper, *, candidates: int = CANDIDATES) -> None:
    """Per-transaction settings for search. A document filter can leave the HNSW scan short
    of candidates; iterative scans keep it going until it has enough."""
    cursor.execute(f"SET LOCAL hnsw.ef_search = {int(max(settings.SEARCH_EF_SEARCH, candidates))}")
    cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
    cursor.execute("SET LOCAL work_mem = '32MB'")


def search_chunks(
    *,
    query: str,
    k: int = 10,
    document_ids: Sequence[int] | None = None,
    candidates: int = CANDIDATES,
    query_vector: Sequence[float] | None = None,
) -> list[SearchHit]:
    """Hybrid search: HNSW cosine neighbours and full-text matches, fused by reciprocal rank.

    Only searchable chunks (current versions of ready documents) are considered. The
    full-text side scores a passage by the summed IDF of the query words it holds, so a
    question written in sentences still matches passages with only some of its words, and
    a rare word ("forklift") outweighs common ones ("temperature").
    """
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    if not query:
        return []
    k = max(1, min(k, 100))
    vector = query_vector if query_vector is not None else remembering_embedder().embed([query])[0]
    sql, params = search_statement(
        query=query, vector=vector, k=k, document_ids=document_ids, candidates=candidates
    )
    with transaction.atomic(), connection.cursor() as cursor:
        search_session(cursor, candidates=candidates)  # SET LOCAL: this transaction only
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        SearchHit(
            chunk_id=row[0],
            document_id=row[1],
            document_title=row[2],
            filename=row[3],
            kind=row[4],
            page_number=row[5],
            page_label=row[6],
            section=row[7],
            section_title=row[8],
            text=row[9],
            score=float(row[10]),
            vector_rank=row[11],
            text_rank=row[12],
            similarity=float(row[13]),
            headline_html=_headline_html(row[14]),
        )
        for row in rows
    ]


def _vector_literal(vector: Sequence[float]) -> str:
    # pgvector's text form; psycopg has no adapter registered on Django's connections.
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


def _headline_html(headline: str) -> str:
    """ts_headline output with our markers turned into <mark>, everything else escaped."""
    escaped = html.escape(headline or "")
    return escaped.replace(_MARK_START, "<mark>").replace(_MARK_STOP, "</mark>")


def sentence_embedder(chunk_ids: Sequence[int]) -> Callable[[Sequence[str]], np.ndarray]:
    """The answer-time embedder for the sentences of these chunks: the vectors stored at
    ingest where there are some (then only the question is embedded), the rest embedded
    and remembered as before."""
    embedder = remembering_embedder()
    known = {
        text: np.asarray(vector, dtype=np.float32)
        for text, vector in SentenceVector.objects.filter(
            chunk_id__in=list(chunk_ids), embedder=embedder.name
        ).values_list("text", "embedding")
    }
    return partial(embedder.embed, known=known)
