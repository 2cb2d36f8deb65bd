"""Reference answers: imported from files, accepted from users' better answers, or written
by an LLM from document passages and validated by an SME."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from apps.documents.embedding import get_embedder
from apps.documents.models import Document
from apps.references.models import Reference, ReferenceSet
from ml.jsonl import JsonlError, numbered_lines, read_text

MAX_TEXT = 10_000
DEFAULT_SETS = {
    ReferenceSet.VALIDATION: "Held out: measures answers, adapters and the judge.",
    ReferenceSet.TRAINING: "Teaches: SFT examples and preference data.",
}


class InvalidReferences(ValueError):
    """A reference file or record that cannot be used; the message says where and why."""


@dataclass
class ImportResult:
    set_name: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "set": self.set_name,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
        }


def reference_set_ensure(*, name: str) -> ReferenceSet:
    name = name.strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,59}", name):
        raise InvalidReferences(
            f"{name!r} is not a set name: use letters, digits, '-' or '_' (e.g. validation)."
        )
    reference_set, _ = ReferenceSet.objects.get_or_create(
        name=name, defaults={"description": DEFAULT_SETS.get(name, "")}
    )
    return reference_set


_FIELDS = {
    "question": "question",
    "reference_answer": "answer",
    "answerable": "answerable",
    "page": "page",
    "section": "section",
    "quote": "quote",
    "key_facts": "key_facts",
    "kind": "kind",
}


def _parse_line(number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidReferences(f"line {number}: not JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise InvalidReferences(f"line {number}: expected a JSON object")
    question = record.get("question")
    answer = record.get("reference_answer", record.get("answer"))
    if not isinstance(question, str) or not question.strip():
        raise InvalidReferences(f"line {number}: 'question' is missing or empty")
    if not isinstance(answer, str) or not answer.strip():
        raise InvalidReferences(f"line {number}: 'reference_answer' is missing or empty")
    if len(question) > MAX_TEXT or len(answer) > MAX_TEXT:
        raise InvalidReferences(f"line {number}: question or answer over {MAX_TEXT} characters")
    page = record.get("page")
    if page is not None and (not isinstance(page, int) or isinstance(page, bool) or page < 1):
        raise InvalidReferences(f"line {number}: 'page' must be a 1-based page number")
    key_facts = record.get("key_facts") or []
    if not isinstance(key_facts, list) or not all(isinstance(f, str) for f in key_facts):
        raise InvalidReferences(f"line {number}: 'key_facts' must be a list of strings")
    answerable = record.get("answerable", True)
    if not isinstance(answerable, bool):
        raise InvalidReferences(f"line {number}: 'answerable' must be true or false")
    external_id = str(record.get("id") or "").strip()[:100]
    if not external_id:
        external_id = "q-" + hashlib.sha256(" ".join(question.split()).encode()).hexdigest()[:16]
    return {
        "external_id": external_id,
        "question": " ".join(question.split()),
        "answer": answer.strip(),
        "answerable": answerable,
        "document_name": str(record.get("document") or "")[:255],
        "page": page,
        "section": str(record.get("section") or "")[:60],
        "quote": str(record.get("quote") or ""),
        "key_facts": key_facts,
        "kind": str(record.get("kind") or "")[:30],
    }


def references_import(*, path: Path, set_name: str) -> ImportResult:
    """Imports a JSON Lines file (the shape of shared/eval/sample-qa.jsonl) into a set.

    All or nothing: one bad line stops the import with its line number and nothing is
    written. Records match earlier imports on their ``id``, so importing the same file
    again changes nothing; a changed record is updated in place.
    """
    try:
        text = read_text(path)
    except JsonlError as exc:
        raise InvalidReferences(str(exc)) from exc
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in numbered_lines(text):
        record = _parse_line(number, line)
        if record["external_id"] in seen:
            raise InvalidReferences(f"line {number}: id {record['external_id']!r} appears twice")
        seen.add(record["external_id"])
        records.append(record)
    if not records:
        raise InvalidReferences(f"{path}: no references in the file")
    with transaction.atomic():
        reference_set = reference_set_ensure(name=set_name)
        result = ImportResult(set_name=reference_set.name)
        documents = _documents_by_name({r["document_name"] for r in records})
        existing = {
            r.external_id: r
            for r in Reference.objects.select_for_update().filter(
                reference_set=reference_set, external_id__in=seen
            )
        }
        changed: list[Reference] = []
        for record in records:
            record["document"] = documents.get(record["document_name"])
            reference = existing.get(record["external_id"])
            if reference is None:
                reference = Reference(
                    reference_set=reference_set,
                    source=Reference.Source.IMPORTED,
                    status=Reference.Status.VALIDATED,
                    **record,
                )
                result.created += 1
            elif all(getattr(reference, key) == value for key, value in record.items()):
                result.unchanged += 1
                result.ids.append(reference.pk)
                continue
            else:
                question_changed = reference.question != record["question"]
                for key, value in record.items():
                    setattr(reference, key, value)
                if question_changed:
                    reference.question_embedding = None
                result.updated += 1
            changed.append(reference)
        _embed_questions(changed)
        for reference in changed:
            reference.save()
            result.ids.append(reference.pk)
    return result


def references_import_first_run(*, path: Path) -> int:
    """Imports the demo validation set on a fresh instance; returns how many were imported."""
    if Reference.objects.exists() or not path.is_file():
        return 0
    return references_import(path=path, set_name=ReferenceSet.VALIDATION).created


def _documents_by_name(names: Iterable[str]) -> dict[str, Document]:
    wanted = {n for n in names if n}
    found: dict[str, Document] = {}
    for document in Document.objects.filter(filename__in=wanted).order_by("version"):
        if document.is_current or document.filename not in found:
            found[document.filename] = document
    return found


def _embed_questions(references: list[Reference]) -> None:
    missing = [r for r in references if r.question_embedding is None]
    if not missing:
        return
    vectors = get_embedder().embed([r.question for r in missing])
    for reference, vector in zip(missing, vectors, strict=True):
        reference.question_embedding = vector.tolist()


@transaction.atomic
def reference_from_better_answer(
    *, feedback_id: int, answer_text: str, reviewer: User
) -> Reference:
    """Turns a user's better answer (as the SME accepted or edited it) into a validated
    training reference. Accepting it again updates the same reference."""
    from apps.feedback.models import Feedback

    feedback = Feedback.objects.select_related("answer").get(pk=feedback_id)
    answer_text = answer_text.strip()
    if not answer_text:
        raise InvalidReferences("The accepted answer is empty.")
    cited: Any = next(iter(feedback.answer.citations or []), {})  # JSON: a citation record
    reference = Reference.objects.select_for_update().filter(feedback=feedback).first()
    if reference is None:
        reference = Reference(
            reference_set=reference_set_ensure(name=ReferenceSet.TRAINING),
            feedback=feedback,
            source=Reference.Source.USER,
            created_by=reviewer,
        )
    reference.question = feedback.answer.question
    reference.answer = answer_text
    reference.status = Reference.Status.VALIDATED
    reference.document = Document.objects.filter(pk=cited.get("document_id")).first()
    reference.document_name = cited.get("document", "")[:255]
    reference.page = cited.get("page")
    reference.section = (cited.get("section") or "")[:60]
    reference.question_embedding = None
    _embed_questions([reference])
    reference.save()
    return reference


def reembed_question(reference: Reference) -> None:
    """Refreshes the question's embedding after its text changed (not saved here)."""
    reference.question_embedding = None
    _embed_questions([reference])
