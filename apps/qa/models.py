from __future__ import annotations

from django.conf import settings
from django.db import models


class Conversation(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    title = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title


class Origin(models.TextChoices):
    USER = "user", "Asked by a user"
    EVALUATION = "evaluation", "Evaluation of an adapter"
    SAMPLING = "sampling", "Sampled for preference data"


class Answer(models.Model):
    """One question and the bot's answer, with everything needed to learn from it later:
    the retrieved passages and scores, the exact prompt, the generation settings, the model
    and adapter that produced it, timings and token counts, and (as a digest) the web session."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        GENERATING = "generating", "Generating"
        DONE = "done", "Answered"
        FAILED = "failed", "Failed"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="answers")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # HMAC of the asking session's key (apps.accounts.sessions), never the key itself.
    session_digest = models.CharField(max_length=64, blank=True)
    origin = models.CharField(
        max_length=12, choices=Origin.choices, default=Origin.USER, db_index=True
    )
    # A form's one-time token: the same submit twice returns the same Answer.
    client_token = models.CharField(max_length=64, unique=True, null=True, blank=True)
    question = models.TextField()
    retrieval_query = models.TextField(
        blank=True,
        help_text="What retrieval searched with: the question, or a follow-up with the "
        "conversation's previous turn.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    text = models.TextField(blank=True)
    declined = models.BooleanField(
        default=False, help_text="The bot said the documents do not cover it."
    )
    error = models.TextField(blank=True)
    template_version = models.CharField(max_length=40, blank=True)
    prompt_messages = models.JSONField(default=list, blank=True)
    retrieved = models.JSONField(
        default=list, blank=True, help_text="[{chunk_id, score, similarity, ...}]"
    )
    citations = models.JSONField(default=list, blank=True)
    evidence = models.JSONField(
        default=list,
        blank=True,
        help_text="[{number, chunk_id, sentences, similarity}]: the sentences of each cited "
        "passage that support the answer (shown under it; the answer text stays the model's).",
    )
    citation_source = models.CharField(max_length=16, blank=True, help_text="model or attributed")
    generation_settings = models.JSONField(default=dict, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    adapter_version = models.CharField(max_length=100, blank=True)
    retrieve_ms = models.FloatField(null=True, blank=True)
    first_token_ms = models.FloatField(null=True, blank=True)
    generate_ms = models.FloatField(null=True, blank=True)
    total_ms = models.FloatField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=16, blank=True)
    queue_ms = models.FloatField(
        null=True, blank=True, help_text="Time spent waiting for this process's model."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Moved while an answer is generated; one with no progress for ANSWER_STALE_SECONDS is
    # failed by the sweep (its process died or was cut off).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["adapter_version"]),
        ]
        constraints = [
            # One answer being written per user at a time: the claim that would make a
            # second one fails here, whatever process or thread tries it.
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status="generating"),
                name="qa_one_generating_answer_per_user",
            )
        ]

    def __str__(self) -> str:
        return self.question[:80]
