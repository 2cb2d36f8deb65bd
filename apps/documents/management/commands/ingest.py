from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.documents import services
from apps.documents.models import Document
from ml.parsing import EXTENSIONS

READ_BLOCK = 1024 * 1024


class Command(BaseCommand):
    help = "Ingest PDF, Markdown and text files (or folders of them) into the document library."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", help="files or folders")
        parser.add_argument(
            "--sentence-vectors",
            action="store_true",
            help="store the sentence vectors that the library's passages lack (a library "
            "ingested before they were stored), then ingest any paths given",
        )
        parser.add_argument("--json", action="store_true", help="one JSON object per document")
        parser.add_argument(
            "--queue",
            action="store_true",
            help="queue for the Celery workers instead of ingesting here",
        )

    def handle(self, *args: object, **options: Any) -> None:
        if options["sentence_vectors"]:
            stored = services.sentence_vectors_fill()
            self.stdout.write(f"{stored} sentence vectors stored")
            if not options["paths"]:
                return
        files = _collect([Path(p) for p in options["paths"]])
        if not files:
            raise CommandError(
                "no files to ingest (supported: " + ", ".join(sorted(EXTENSIONS)) + ")"
            )
        failures = 0
        for path in files:
            with path.open("rb") as handle:
                result = services.document_upload(
                    filename=path.name,
                    chunks=iter(partial(handle.read, READ_BLOCK), b""),
                    enqueue=bool(options["queue"]),
                )
            document = result.document
            if (
                result.created
                and document.status == Document.Status.QUEUED
                and not options["queue"]
            ):
                document = services.document_ingest(document_id=document.pk)
            status = document.status if result.created else "duplicate"
            failures += document.status == Document.Status.FAILED
            self._report(path, document, status, as_json=bool(options["json"]))
        if failures:
            raise CommandError(f"{failures} of {len(files)} files failed")

    def _report(self, path: Path, document: Document, status: str, *, as_json: bool) -> None:
        if as_json:
            record = {
                "document": document.title,
                "id": document.pk,
                "path": str(path),
                "version": document.version,
                "status": status,
                "pages": document.pages_total,
                "chunks": document.chunks_count,
                "error": document.error or None,
            }
            self.stdout.write(json.dumps(record))
            return
        line = f"{status:10} {path}  ({document.pages_total} pages, {document.chunks_count} chunks)"
        if document.error:
            line += f"  {document.error}"
        self.stdout.write(line)


def _collect(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise CommandError(f"no such file or folder: {path}")
    return files
