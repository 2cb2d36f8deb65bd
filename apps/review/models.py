from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.feedback.models import Feedback
from apps.judging.models import Judgement
from apps.references.models import Reference


class Queue(models.TextChoices):
    JUDGEMENTS = "judgements", "AI judgements to validate"
    NEGATIVE_FEEDBACK = "negative_feedback", "Negative feedback to triage"
    BETTER_ANSWERS = "better_answers", "Better answers to accept"
    SYNTHETIC = "synthetic", "Synthetic pairs to validate"


class ReviewDecision(models.Model):
    """One reviewer decision on one queue item: who, when, what, why, and how long they
    spent on it (so review effort can be measured). Items keep only their current state."""

    queue = models.CharField(max_length=24, choices=Queue.choices)
    object_id = models.PositiveBigIntegerField()
    action = models.CharField(max_length=24)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_decisions"
    )
    decided_at = models.DateTimeField(auto_now_add=True)
    seconds = models.FloatField(null=True, blank=True, help_text="Time spent on this item.")
    reason = models.TextField(blank=True)
    score_before = models.FloatField(null=True, blank=True)
    score_after = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-decided_at", "-id"]
        indexes = [
            models.Index(fields=["queue", "object_id"]),
            models.Index(fields=["reviewer", "decided_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.queue} #{self.object_id}: {self.action} by {self.reviewer}"


# The queues are views of other apps' rows, each with its own admin page.
class JudgementToValidate(Judgement):
    class Meta:
        proxy = True
        verbose_name = "AI judgement to validate"
        verbose_name_plural = "1. AI judgements to validate"


class NegativeFeedback(Feedback):
    class Meta:
        proxy = True
        verbose_name = "negative feedback"
        verbose_name_plural = "2. Negative feedback to triage"


class BetterAnswer(Feedback):
    class Meta:
        proxy = True
        verbose_name = "user's better answer"
        verbose_name_plural = "3. Better answers to accept"


class SyntheticPair(Reference):
    class Meta:
        proxy = True
        verbose_name = "synthetic question/answer pair"
        verbose_name_plural = "4. Synthetic pairs to validate"
