from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.documents.selectors import search_chunks


class Command(BaseCommand):
    help = "Hybrid search over the document library."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("query")
        parser.add_argument("--k", type=int, default=5, help="number of results (1-100)")
        parser.add_argument("--document", type=int, action="append", help="restrict to document id")
        parser.add_argument("--json", action="store_true", help="print a JSON list")

    def handle(self, *args: object, **options: Any) -> None:
        hits = search_chunks(
            query=str(options["query"]),
            k=int(options["k"]),
            document_ids=options["document"],
        )
        if options["json"]:
            self.stdout.write(json.dumps([hit.as_json() for hit in hits], ensure_ascii=False))
            return
        for rank, hit in enumerate(hits, start=1):
            page = f"p.{hit.page_number}" + (
                f" (printed {hit.page_label})" if hit.page_label else ""
            )
            self.stdout.write(
                f"{rank}. {hit.document_title}  {page}  §{hit.section}  [{hit.score:.4f}]"
            )
            self.stdout.write("   " + " ".join(hit.text.split())[:200])
