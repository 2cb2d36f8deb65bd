from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from pgvector.django import VectorField

from apps.documents.models import EMBEDDING_DIMENSIONS, Chunk, Document


class ReferenceSet(models.Model):
    """A named group of reference answers: ``validation`` measures, ``training`` teaches."""

    VALIDATION = "validation"
    TRAINING = "training"
    # Synthetic pairs kept back to measure with (never taught): see apps/references/synthesis.
    SYNTHETIC_HELDOUT = "synthetic-heldout"

    name = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Reference(models.Model):
    """A question with the answer an expert stands behind, and where in the documents it
    comes from. Only validated references are used to judge, evaluate or train."""

    class Source(models.TextChoices):
        IMPORTED = "imported", "Imported file"
        USER = "user", "User's better answer"
        SYNTHETIC = "synthetic", "Synthetic (LLM-written)"

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting SME review"
        VALIDATED = "validated", "Validated"
        REJECTED = "rejected", "Rejected"

    reference_set = models.ForeignKey(
        ReferenceSet, on_delete=models.PROTECT, related_name="references"
    )
    external_id = models.CharField(
        max_length=100, blank=True, help_text="The id in the imported file; re-imports match on it."
    )
    question = models.TextField()
    answer = models.TextField()
    answerable = models.BooleanField(
        default=True, help_text="False: the documents do not cover it; the right answer declines."
    )
    document = models.ForeignKey(
        Document, null=True, blank=True, on_delete=models.SET_NULL, related_name="references"
    )
    document_name = models.CharField(max_length=255, blank=True)
    page = models.PositiveIntegerField(null=True, blank=True, help_text="1-based PDF page index")
    section = models.CharField(max_length=60, blank=True)
    quote = models.TextField(blank=True)
    key_facts = models.JSONField(default=list, blank=True)
    kind = models.CharField(max_length=30, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    chunk = models.ForeignKey(
        Chunk,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The passage a synthetic pair was written from.",
    )
    feedback = models.ForeignKey(
        "feedback.Feedback",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="references",
        help_text="The feedback whose better answer this is.",
    )
    generated_by = models.CharField(max_length=200, blank=True)
    checks = models.JSONField(
        default=dict,
        blank=True,
        help_text="A synthetic pair's automatic checks: passed, and why not (see synthesis).",
    )
    question_embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["reference_set", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["reference_set", "external_id"],
                condition=~Q(external_id=""),
                name="reference_external_id_unique_per_set",
            ),
            models.UniqueConstraint(
                fields=["feedback"],
                condition=Q(feedback__isnull=False),
                name="one_reference_per_better_answer",
            ),
        ]
        indexes = [models.Index(fields=["status", "source"])]

    def __str__(self) -> str:
        return self.question[:80]
