from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.accounts.decorators import sme_required
from apps.core.csv_cells import csv_cell
from apps.review import selectors
from apps.review.presenters import analytics_context


@sme_required
def analytics(request: HttpRequest) -> HttpResponse:
    return render(request, "review/analytics.html", analytics_context())


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    header: list[str] | None = None
    for row in rows:
        if header is None:
            header = list(row)
            yield writer.writerow(header)
        yield writer.writerow([csv_cell(v) for v in row.values()])


def _jsonl_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


@sme_required
def export(request: HttpRequest, kind: str, fmt: str) -> StreamingHttpResponse:
    if kind not in selectors.EXPORTS or fmt not in {"csv", "jsonl"}:
        raise Http404("Exports: feedback, judgements or references, as csv or jsonl.")
    rows = selectors.export_rows(kind)
    lines = _csv_lines(rows) if fmt == "csv" else _jsonl_lines(rows)
    content_type = "text/csv" if fmt == "csv" else "application/jsonl"
    response = StreamingHttpResponse(lines, content_type=f"{content_type}; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="plumbline-{kind}-{stamp}.{fmt}"'
    return response
