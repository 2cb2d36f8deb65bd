from __future__ import annotations

import re

from django.conf import settings
from django.db.models import Q, QuerySet
from pgvector.django import CosineDistance

from apps.references.models import Reference, ReferenceSet


def normalize_question(question: str) -> str:
    return re.sub(r"[^\w%°]+", " ", question.lower()).strip()


def references_validated(*, set_name: str | None = None) -> QuerySet[Reference]:
    queryset = Reference.objects.filter(status=Reference.Status.VALIDATED)
    if set_name:
        queryset = queryset.filter(reference_set__name=set_name)
    return queryset.select_related("reference_set", "document")


def set_names(spec: str) -> list[str]:
    """The reference sets an evaluation names: one name, or several joined by "+"
    ("validation+synthetic-heldout")."""
    return [name.strip() for name in spec.split("+") if name.strip()]


def heldout_set_names() -> frozenset[str]:
    """The reference sets that measure and so never teach: ``validation``, the held-out
    slice of the synthetic pairs and whatever sets evaluation runs on (LOOP_EVAL_SET). A
    gain measured on data that trained is no gain, so every training path asks this one
    rule, and no setting turns it off."""
    return frozenset(
        {
            ReferenceSet.VALIDATION,
            ReferenceSet.SYNTHETIC_HELDOUT,
            *set_names(settings.LOOP_EVAL_SET),
        }
    )


def heldout_references() -> QuerySet[Reference]:
    """Every reference of a held-out set, whatever its status: a pending one will measure
    once it is validated."""
    return Reference.objects.filter(reference_set__name__in=heldout_set_names())


def heldout_questions() -> frozenset[str]:
    """The held-out questions, normalised (normalize_question): an answer to one of them,
    however it was spaced or cased, is an answer to a measured question."""
    return frozenset(
        normalize_question(q) for q in heldout_references().values_list("question", flat=True)
    )


def references_teaching(*, set_name: str | None = None) -> QuerySet[Reference]:
    """Validated references that may teach: those of every set but the held-out ones."""
    return references_validated(set_name=set_name).exclude(
        reference_set__name__in=heldout_set_names()
    )


def references_for_training(*, set_name: str) -> list[Reference]:
    """The references of ``set_name`` that training learns from (SFT) or samples answers
    for, in order: validated, of no held-out set, and not repeating a held-out question
    (a copy of a validation question in the training set would teach the measured answer)."""
    heldout = heldout_questions()
    return [
        reference
        for reference in references_teaching(set_name=set_name).order_by("pk")
        if normalize_question(reference.question) not in heldout
    ]


def synthetic_unreviewed() -> QuerySet[Reference]:
    """Synthetic pairs that passed their automatic checks and wait for an SME: they teach
    meanwhile (with less weight than validated ones); a rejected one never does."""
    return Reference.objects.filter(
        source=Reference.Source.SYNTHETIC, status=Reference.Status.PENDING, checks__passed=True
    )


def references_for_sft(*, set_name: str) -> list[Reference]:
    """What SFT learns from: ``references_for_training`` plus the set's unreviewed synthetic
    pairs that passed their checks, under the same held-out rules."""
    heldout = heldout_questions()
    unreviewed = [
        reference
        for reference in synthetic_unreviewed()
        .filter(reference_set__name=set_name)
        .exclude(reference_set__name__in=heldout_set_names())
        .select_related("reference_set", "document")
        .order_by("pk")
        if normalize_question(reference.question) not in heldout
    ]
    return [*references_for_training(set_name=set_name), *unreviewed]


def references_measuring(*, set_names: list[str]) -> QuerySet[Reference]:
    """The references an evaluation of ``set_names`` answers: validated ones, and the
    held-out synthetic pairs that passed their checks (a new library has no other)."""
    return Reference.objects.filter(reference_set__name__in=set_names).filter(
        Q(status=Reference.Status.VALIDATED)
        | Q(source=Reference.Source.SYNTHETIC, status=Reference.Status.PENDING, checks__passed=True)
    )


def reference_for_question(
    *, question: str, embedding: list[float] | None, min_similarity: float
) -> Reference | None:
    """The reference an answer to ``question`` is judged against (validated, or a checked
    synthetic pair awaiting its SME): the same words
    first, else the nearest question by embedding when it is at least ``min_similarity``
    alike (cosine). Only references that may teach are candidates: a judgement against a
    held-out reference would carry it into training, so an answer to a validation question
    is judged on its passages alone (evaluation judges against its set directly)."""
    candidates = references_teaching() | synthetic_unreviewed().exclude(
        reference_set__name__in=heldout_set_names()
    )
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
