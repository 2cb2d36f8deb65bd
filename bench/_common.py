"""What the benchmark scripts share: Django against the bench database, corpus paths, helpers.

Importing this module points Django at its own runtime folder (var/bench, unless
PORTAL_VAR_DIR says otherwise), so a benchmark never touches the developer's data. With no
DATABASE_URL the settings start an embedded PostgreSQL with pgvector under that folder.
Import it before anything from apps/.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPUS_PDFS = sorted((SHARED / "corpus").glob("*.pdf"))
HSG150 = SHARED / "corpus-extra" / "hsg150_Health_and_safety_in_construction.pdf"
ADA_MD = SHARED / "corpus-extra" / "ada-2010.md"
SAMPLE_QA = SHARED / "eval" / "sample-qa.jsonl"
READ_BLOCK = 1024 * 1024

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("PORTAL_VAR_DIR", str(REPO / "var" / "bench"))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from apps.documents import services  # noqa: E402
from apps.documents.models import Chunk, Document  # noqa: E402

_STARTED = time.perf_counter()


def progress(message: str) -> None:
    """A progress line on stderr, stamped with the seconds since the script started."""
    print(f"[{time.perf_counter() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def migrate() -> None:
    call_command("migrate", verbosity=0)


def ingest_file(path: Path) -> Document:
    """Uploads and ingests one file through the real service path, as `manage.py ingest` does."""
    with path.open("rb") as handle:
        result = services.document_upload(
            filename=path.name,
            chunks=iter(lambda: handle.read(READ_BLOCK), b""),
            enqueue=False,
        )
    document = result.document
    if document.status == Document.Status.QUEUED:
        document = services.document_ingest(document_id=document.pk)
    if document.status != Document.Status.READY:
        raise RuntimeError(f"ingest of {path.name} ended {document.status}: {document.error}")
    return document


def ensure_ingested(paths: Sequence[Path]) -> list[Document]:
    """The searched version of each file, ingesting the files that are not in the library."""
    documents = []
    for path in paths:
        document = Document.objects.filter(
            filename=path.name, is_current=True, status=Document.Status.READY
        ).first()
        if document is None:
            progress(f"ingesting {path.name}")
            document = ingest_file(path)
        documents.append(document)
    # A library ingested before sentence vectors were stored gets them (once).
    from apps.documents.services import sentence_vectors_fill

    if stored := sentence_vectors_fill():
        progress(f"stored {stored} sentence vectors")
    return documents


def searchable_chunks() -> int:
    return Chunk.objects.filter(searchable=True).count()


def load_qa() -> list[dict[str, Any]]:
    with SAMPLE_QA.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) with linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def timed(run: Callable[[], object]) -> float:
    """Milliseconds that ``run()`` takes."""
    started = time.perf_counter()
    run()
    return 1000 * (time.perf_counter() - started)


def latency_summary(ms: Sequence[float]) -> str:
    p50, p95, p99 = (percentile(ms, p) for p in (50, 95, 99))
    mean = statistics.fmean(ms)
    return (
        f"p50 {p50:6.1f}  p95 {p95:6.1f}  p99 {p99:6.1f}  mean {mean:6.1f}  max {max(ms):6.1f} ms"
    )


def show(label: str, value: object) -> None:
    """One figure of a benchmark's report: a label column, then the value."""
    print(f"{label:30s} {value}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "BELOW TARGET"
