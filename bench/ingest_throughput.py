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
import time

from _common import CORPUS_PDFS, HSG150, ingest_file, migrate, progress
from django.conf import settings
from django.db import connection

from apps.documents import services
from apps.documents.embedding import get_embedder, passage_text
from apps.documents.models import Chunk, Document, LexemeStat
from ml.chunking import chunk_pages
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    migrate()
    empty_library()
    embedder = get_embedder()
    embedder.embed(["warm-up passage about ventilation air"] * services.EMBED_BATCH_CHUNKS)
    progress("embedder loaded and warmed up")

    started = time.perf_counter()
    documents = []
    for path in FILES:
        documents.append(ingest_file(path))
        progress(f"ingested {path.name}: {documents[-1].chunks_count} chunks")
    ingest_s = time.perf_counter() - started
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
        "raw_embed_chunks": len(texts),
        "raw_embed_s": round(raw_s, 2),
        "raw_embed_chunks_per_s": round(len(texts) / raw_s, 2),
        "embedder_pages_per_s": round(pages / raw_s, 2),
        "ratio": round((pages / ingest_s) / (pages / raw_s), 3),
        "target_ratio": TARGET_RATIO,
    }
    verdict = "PASS" if figures["ratio"] >= TARGET_RATIO else "BELOW TARGET"
    print(f"files                       {', '.join(p.name for p in FILES)}")
    print(f"pages                       {pages}")
    print(f"chunks                      {chunks}")
    print(f"ingest seconds              {ingest_s:.2f}")
    print(f"ingest pages/s              {figures['ingest_pages_per_s']:.2f}")
    print(f"ingest chunks/s             {figures['ingest_chunks_per_s']:.2f}")
    print(f"raw embed seconds           {raw_s:.2f}  ({len(texts)} passages, batches of {batch})")
    print(f"raw embed chunks/s          {figures['raw_embed_chunks_per_s']:.2f}")
    print(f"embedder-equivalent pages/s {figures['embedder_pages_per_s']:.2f}")
    ratio = figures["ratio"]
    print(f"ingest / raw embedder       {ratio:.3f}  (target >= {TARGET_RATIO})  {verdict}")
    if args.json:
        print(json.dumps({"benchmark": "ingest_throughput", **figures, "verdict": verdict}))


if __name__ == "__main__":
    main()
