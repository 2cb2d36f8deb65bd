"""The stable JSON shape of an answer, shared by ``manage.py ask --json`` and the API."""

from __future__ import annotations

from typing import Any

from apps.qa.models import Answer


def answer_json(answer: Answer) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": answer.pk,
        "question": answer.question,
        "answer": answer.text,
        "status": answer.status,
        "declined": answer.declined,
        "citations": [
            {"document": c["document"], "page": c["page"], "section": c["section"]}
            for c in answer.citations
        ],
        "evidence": evidence_json(answer),
        "adapter": answer.adapter_version or "base",
        "timings": {
            "retrieve_ms": answer.retrieve_ms,
            "first_token_ms": answer.first_token_ms,
            "total_ms": answer.total_ms,
        },
    }
    if answer.error:
        record["error"] = answer.error
    return record


def evidence_json(answer: Answer) -> list[dict[str, Any]]:
    """The supporting sentences of each cited passage, with where to find them."""
    records = {r["number"]: r for r in answer.retrieved}
    return [
        {
            "number": e["number"],
            "document": records[e["number"]]["document"],
            "page": records[e["number"]]["page"],
            "section": records[e["number"]]["section"],
            "sentences": e["sentences"],
        }
        for e in answer.evidence or []
        if e["number"] in records
    ]
