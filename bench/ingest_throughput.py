"""Ingest throughput against the raw embedder on the same text.

Empties the bench library, then uploads and ingests the two demo-corpus PDFs and HSG150
(259 pages) through the real service path, timing the wall clock. Then embeds exactly the
same passage texts with the bare embedder, in the batches the service uses. Both timings
start with the model loaded. The ratio of the two throughputs says how much of an ingest
is embedding; the target is ingest / raw embedder >= 0.8.

    .venv/bin/python bench/ingest_throughput.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Its own runtime folder, so no other benchmark's library is emptied or mixed in.
os.environ.setdefault(
    "PORTAL_VAR_DIR",
    str(Path(__file__).resolve().parents[1] / "var" / "bench" / "ingest"),
)
from _common import CORPUS_PDFS, HSG150, ingest_file, migrate, progress, show, verdict
from django.conf import settings
from django.db import connection

from apps.documents import services
from apps.documents.embedding import get_embedder, passage_text
from apps.documents.models import Chunk, Document, LexemeStat
from ml.chunking import chunk_pages
from ml.embeddings import SentenceTransformerEmbedder
from ml.parsing import detect_kind, extract_pages, tesseract_ocr

TARGET_RATIO = 0.8
FILES = [*CORPUS_PDFS, HSG150]


def empty_library() -> None:
    for document in Document.objects.exclude(file=""):
        document.file.delete(save=False)
    deleted, _ = Document.objects.all().delete()
    LexemeStat.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE documents_chunk")
    progress(f"emptied the library ({deleted} rows deleted)")


def passage_texts() -> list[str]:
    """What the service embeds for FILES, rebuilt the way services._ingest builds it."""
    ocr = tesseract_ocr() if settings.OCR_ENABLED else None
    texts = []
    for path in FILES:
        kind = detect_kind(path.name, path.read_bytes()[:4096])
        pages = extract_pages(path, kind, max_pages=settings.DOCUMENT_MAX_PAGES, ocr=ocr)
        texts += [
            passage_text(section=c.section, section_title=c.section_title, text=c.text)
            for c in chunk_pages(pages, kind=kind)
        ]
    return texts


def time_calls(embedder: SentenceTransformerEmbedder, seconds: list[float]) -> None:
    """Records how long each embed() call takes. The service gets this same cached embedder,
    so this splits an ingest into embedding and the rest (parsing, chunking, SQL)."""
    embed = embedder.embed

    def timed_embed(texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        try:
            return embed(texts)
        finally:
            seconds.append(time.perf_counter() - started)

    embedder.embed = timed_embed  # type: ignore[method-assign]  # timing it, on purpose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    migrate()
    empty_library()
    embedder = get_embedder()
    embedder.embed(["warm-up passage about ventilation air"] * services.EMBED_BATCH_CHUNKS)
    progress("embedder loaded and warmed up")

    embed_calls: list[float] = []
    time_calls(embedder, embed_calls)
    started = time.perf_counter()
    documents = []
    for path in FILES:
        documents.append(ingest_file(path))
        progress(f"ingested {path.name}: {documents[-1].chunks_count} chunks")
    ingest_s = time.perf_counter() - started
    del embedder.embed  # back to the class's method for the raw timing
    pages = sum(d.pages_total for d in documents)
    chunks = sum(d.chunks_count for d in documents)

    texts = passage_texts()
    stored = Chunk.objects.filter(document__in=documents).count()
    if len(texts) != stored:
        progress(f"WARNING: rebuilt {len(texts)} passages but the service stored {stored}")
    progress(f"embedding {len(texts)} passages with the bare embedder")
    batch = services.EMBED_BATCH_CHUNKS
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        embedder.embed(texts[start : start + batch])
    raw_s = time.perf_counter() - started

    figures = {
        "pages": pages,
        "chunks": chunks,
        "ingest_s": round(ingest_s, 2),
        "ingest_pages_per_s": round(pages / ingest_s, 2),
        "ingest_chunks_per_s": round(chunks / ingest_s, 2),
        "ingest_embedding_s": round(sum(embed_calls), 2),
        "raw_embed_chunks": len(texts),
        "raw_embed_s": round(raw_s, 2),
        "raw_embed_chunks_per_s": round(len(texts) / raw_s, 2),
        "embedder_pages_per_s": round(pages / raw_s, 2),
        "ratio": round((pages / ingest_s) / (pages / raw_s), 3),
        "target_ratio": TARGET_RATIO,
    }
    ok = verdict(figures["ratio"] >= TARGET_RATIO)
    show("files", ", ".join(p.name for p in FILES))
    show("pages", pages)
    show("chunks", chunks)
    show("ingest seconds", f"{ingest_s:.2f}")
    show("ingest pages/s", f"{figures['ingest_pages_per_s']:.2f}")
    show("ingest chunks/s", f"{figures['ingest_chunks_per_s']:.2f}")
    embedding_s = sum(embed_calls)
    share = f"{embedding_s / ingest_s:.1%} of the ingest; other work {ingest_s - embedding_s:.2f}"
    show("  of which embedding seconds", f"{embedding_s:.2f}  ({share})")
    show("raw embed seconds", f"{raw_s:.2f}  ({len(texts)} passages, {batch} per call)")
    show("raw embed chunks/s", f"{figures['raw_embed_chunks_per_s']:.2f}")
    show("embedder-equivalent pages/s", f"{figures['embedder_pages_per_s']:.2f}")
    show("ingest / raw embedder", f"{figures['ratio']:.3f}  (target >= {TARGET_RATIO})  {ok}")
    if args.json:
        print(json.dumps({"benchmark": "ingest_throughput", **figures, "verdict": ok}))


if __name__ == "__main__":
    main()
