from __future__ import annotations

import re

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from apps.documents.templatetags.citations import cite_url
from apps.qa.evidence import sentences_of
from apps.qa.selectors import chunk_texts
from ml.prompting import CITATION, mark_numbers

register = template.Library()


@register.filter
def with_citation_links(answer: object) -> SafeString:
    """The answer text, escaped, with each [n] linked to the cited page."""
    records = {r["number"]: r for r in getattr(answer, "retrieved", [])}

    def link(number: int) -> str:
        record = records.get(number)
        if record is None:
            return str(number)
        url = cite_url(record["document_id"], record["kind"], record["page"], record["chunk_id"])
        title = (
            f"{record['document']}, p. {record['page']}"
            if record["kind"] == "pdf"
            else record["document"]
        )
        return str(
            format_html(
                '<a class="cite-mark" href="{}" target="_blank" rel="noopener" title="{}">{}</a>',
                url,
                title,
                number,
            )
        )

    def replace(match: re.Match[str]) -> str:
        return "[" + ", ".join(link(n) for n in mark_numbers(match.group(0))) + "]"

    text = escape(getattr(answer, "text", ""))
    return mark_safe(CITATION.sub(replace, str(text)))


@register.simple_tag
def resources(answer: object) -> list[dict[str, object]]:
    """Passages the answer drew on: cited ones first, then the rest it was given."""
    retrieved = list(getattr(answer, "retrieved", []))
    cited = [c["number"] for c in getattr(answer, "citations", [])]
    return sorted(
        retrieved,
        key=lambda r: (
            r["number"] not in cited,
            cited.index(r["number"]) if r["number"] in cited else r["number"],
        ),
    )


@register.simple_tag
def evidence(answer: object) -> list[dict[str, object]]:
    """The stored evidence of each cited passage with its retrieved record (document, page,
    section for the link) and the whole passage, its supporting sentences marked."""
    stored = list(getattr(answer, "evidence", None) or [])
    records = {r["number"]: r for r in getattr(answer, "retrieved", [])}
    texts = chunk_texts([e["chunk_id"] for e in stored])
    items: list[dict[str, object]] = []
    for item in stored:
        record = records.get(item["number"])
        if record is None or not item["sentences"]:
            continue
        supporting = set(item["sentences"])
        whole = sentences_of(texts.get(item["chunk_id"], ""))
        passage = " ".join(
            str(format_html("<mark>{}</mark>", s)) if s in supporting else str(escape(s))
            for s in whole
        )
        items.append(
            {
                "record": record,
                "sentences": item["sentences"],
                "passage_html": mark_safe(passage) if supporting & set(whole) else "",
            }
        )
    return items
