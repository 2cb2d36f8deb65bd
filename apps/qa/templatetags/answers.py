from __future__ import annotations

import re

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from apps.documents.templatetags.citations import cite_url

register = template.Library()

_MARK = re.compile(r"\[(\d{1,2}(?:\s*,\s*\d{1,2})*)\]")


@register.filter
def with_citation_links(answer: object) -> SafeString:
    """The answer text, escaped, with each [n] linked to the cited page."""
    records = {r["number"]: r for r in getattr(answer, "retrieved", [])}

    def link(number: str) -> str:
        record = records.get(int(number))
        if record is None:
            return escape(number)
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
        numbers = [n.strip() for n in match.group(1).split(",")]
        return "[" + ", ".join(link(n) for n in numbers) + "]"

    text = escape(getattr(answer, "text", ""))
    return mark_safe(_MARK.sub(replace, str(text)))


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
