from __future__ import annotations

from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag
def cite_url(document_id: int, kind: str, page_number: int, chunk_id: int | None = None) -> str:
    """Where a citation opens: the PDF at its page, or a text document at the passage."""
    if kind == "pdf":
        return f"{reverse('documents:file', args=[document_id])}#page={page_number}"
    anchor = f"#chunk-{chunk_id}" if chunk_id else ""
    return f"{reverse('documents:text', args=[document_id])}{anchor}"


@register.simple_tag
def page_text(kind: str, page_number: int, page_label: str) -> str:
    if kind != "pdf":
        return ""
    if page_label and page_label != str(page_number):
        return f"p. {page_number} (printed {page_label})"
    return f"p. {page_number}"
