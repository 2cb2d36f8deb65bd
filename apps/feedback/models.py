from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.qa.models import Answer


class Score(models.IntegerChoices):
    STRONGLY_DISAGREE = 1, "Strongly disagree"
    DISAGREE = 2, "Disagree"
    NEUTRAL = 3, "Neutral"
    AGREE = 4, "Agree"
    STRONGLY_AGREE = 5, "Strongly agree"


class Feedback(models.Model):
    """A user's current rating of an answer; every change is kept in FeedbackRevision.

    Two SME queues read it: low ratings to triage, and better answers to accept as
    references. Their current state lives here; who decided and when is in review."""

    class Triage(models.TextChoices):
        NEW = "new", "Not triaged"
        CONFIRMED = "confirmed", "Confirmed: the answer is wrong"
        DOCUMENT = "document", "Documents need fixing"
        DISMISSED = "dismissed", "Dismissed: the answer is fine"

    class BetterAnswer(models.TextChoices):
        NONE = "none", "No better answer"
        PENDING = "pending", "Awaiting SME review"
        ACCEPTED = "accepted", "Accepted as reference"
        REJECTED = "rejected", "Rejected"

    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    # HMAC of the rating session's key (apps.accounts.sessions), never the key itself.
    session_digest = models.CharField(max_length=64, blank=True)
    score = models.PositiveSmallIntegerField(
        choices=Score.choices, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    better_answer = models.TextField(blank=True)
    note = models.TextField(blank=True)
    triage_state = models.CharField(max_length=16, choices=Triage.choices, default=Triage.NEW)
    better_answer_state = models.CharField(
        max_length=16, choices=BetterAnswer.choices, default=BetterAnswer.NONE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["score", "triage_state"]),
            models.Index(fields=["better_answer_state"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["answer", "user"], name="one_feedback_per_user_and_answer"
            ),
            models.CheckConstraint(
                condition=models.Q(score__gte=1, score__lte=5), name="feedback_score_1_to_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} rated answer {self.answer_id}: {self.score}"


class FeedbackRevision(models.Model):
    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="revisions")
    score = models.PositiveSmallIntegerField(choices=Score.choices)
    better_answer = models.TextField(blank=True)
    note = models.TextField(blank=True)
    # HMAC of the rating session's key (apps.accounts.sessions), never the key itself.
    session_digest = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"revision of {self.feedback_id}: {self.score}"
