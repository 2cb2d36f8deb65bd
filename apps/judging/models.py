from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.qa.models import Answer
from apps.references.models import Reference


class JudgeRubric(models.Model):
    """The fixed rubric LLM judges are given. A new wording is a new version; judgements
    record the version they were made under, so scores stay comparable."""

    version = models.CharField(max_length=40, unique=True)
    text = models.TextField()
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_rubric"
            )
        ]

    def __str__(self) -> str:
        return self.version


class Judgement(models.Model):
    """The AI judge's score of one answer under one judge version, plus an SME's check of it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Judging"
        DONE = "done", "Judged"
        FAILED = "failed", "Failed (will retry)"

    class Review(models.TextChoices):
        UNREVIEWED = "unreviewed", "Not reviewed"
        ACCEPTED = "accepted", "Accepted"
        OVERRIDDEN = "overridden", "Overridden"

    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="judgements")
    reference = models.ForeignKey(
        Reference, null=True, blank=True, on_delete=models.SET_NULL, related_name="judgements"
    )
    judge_version = models.CharField(max_length=200, help_text="backend:model:prompt version")
    backend = models.CharField(max_length=20)
    model = models.CharField(max_length=200, blank=True)
    prompt_version = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="A running judgement whose lease ran out is claimable."
    )
    score = models.FloatField(null=True, blank=True, help_text="0 to 5 in steps of 0.5")
    comment = models.TextField(blank=True)
    inputs = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    judged_at = models.DateTimeField(null=True, blank=True)
    review_state = models.CharField(
        max_length=16, choices=Review.choices, default=Review.UNREVIEWED
    )
    validated_score = models.FloatField(
        null=True, blank=True, help_text="The score an SME stands behind (0 to 5)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["answer", "judge_version"], name="one_judgement_per_answer_and_version"
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=5),
                name="judgement_score_0_to_5",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["review_state", "judge_version"]),
        ]

    def __str__(self) -> str:
        shown = "-" if self.score is None else f"{self.score:g}"
        return f"answer {self.answer_id}: {shown} ({self.judge_version})"
