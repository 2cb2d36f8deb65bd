from __future__ import annotations

import re

from django.db.models import QuerySet
from pgvector.django import CosineDistance

from apps.references.models import Reference, ReferenceSet


def normalize_question(question: str) -> str:
    return re.sub(r"[^\w%°]+", " ", question.lower()).strip()


def references_validated(*, set_name: str | None = None) -> QuerySet[Reference]:
    queryset = Reference.objects.filter(status=Reference.Status.VALIDATED)
    if set_name:
        queryset = queryset.filter(reference_set__name=set_name)
    return queryset.select_related("reference_set", "document")


def reference_for_question(
    *, question: str, embedding: list[float] | None, min_similarity: float
) -> Reference | None:
    """The validated reference for a question: the same words first, else the nearest
    question by embedding when it is at least ``min_similarity`` alike (cosine)."""
    candidates = references_validated()
    same_words = candidates.filter(question__iexact=question.strip()).first()
    if same_words is not None:
        return same_words
    if embedding is None:
        return None
    nearest = (
        candidates.exclude(question_embedding__isnull=True)
        .annotate(distance=CosineDistance("question_embedding", embedding))
        .order_by("distance")
        .first()
    )
    if nearest is None:
        return None
    same_question = normalize_question(nearest.question) == normalize_question(question)
    if same_question or 1 - nearest.distance >= min_similarity:
        return nearest
    return None


def reference_sets() -> QuerySet[ReferenceSet]:
    return ReferenceSet.objects.order_by("name")
