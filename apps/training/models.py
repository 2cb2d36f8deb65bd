from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.qa.models import Answer
from apps.references.models import Reference


class DataSnapshot(models.Model):
    """The training data of one build, frozen: its rows and a JSON Lines file in the shape
    TRL expects. Runs point at a snapshot, so what an adapter learned from is never lost."""

    class Kind(models.TextChoices):
        PREFERENCES = "preferences", "Preference pairs"
        SFT = "sft", "SFT examples"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    size = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="Rows by source.")
    path = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.size})"

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.pk}-{self.sha256[:12]}"


class PreferencePair(models.Model):
    """``[instruction, chosen, rejected]``: the instruction is the exact chat the generator
    saw (question plus retrieved passages)."""

    class Source(models.TextChoices):
        BETTER_ANSWER = "better_answer", "Better answer over a low-rated answer"
        SCORE_GAP = "score_gap", "Higher- over lower-scored answer"
        SAMPLED = "sampled", "Sampled answers ranked by the judge"
        REFERENCE = "reference", "Validated reference over a low-scored answer"

    class Label(models.IntegerChoices):
        # Higher outranks lower when two pairs disagree about the same answers.
        AI = 1, "AI judge"
        USER = 2, "User"
        SME = 3, "SME-validated"

    snapshot = models.ForeignKey(DataSnapshot, on_delete=models.CASCADE, related_name="pairs")
    fingerprint = models.CharField(max_length=64)
    source = models.CharField(max_length=16, choices=Source.choices)
    label = models.PositiveSmallIntegerField(choices=Label.choices)
    question = models.TextField()
    prompt = models.JSONField()
    chosen = models.TextField()
    rejected = models.TextField()
    margin = models.FloatField(help_text="Score of chosen minus rejected (0-5 scale).")
    chosen_answer = models.ForeignKey(
        Answer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rejected_answer = models.ForeignKey(
        Answer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["snapshot", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["snapshot", "fingerprint"], name="one_pair_per_fingerprint_per_snapshot"
            )
        ]

    def __str__(self) -> str:
        return self.question[:80]


class SFTExample(models.Model):
    snapshot = models.ForeignKey(DataSnapshot, on_delete=models.CASCADE, related_name="examples")
    reference = models.ForeignKey(Reference, null=True, on_delete=models.SET_NULL, related_name="+")
    prompt = models.JSONField()
    completion = models.TextField()

    class Meta:
        ordering = ["snapshot", "id"]

    def __str__(self) -> str:
        return self.completion[:80]


class TrainingRun(models.Model):
    """One training job: what it trains with, how far it got, its metric series and logs,
    and what it produced. Runs go to the ``gpu`` queue one at a time."""

    class Algorithm(models.TextChoices):
        REWARD = "reward", "Reward model"
        SFT = "sft", "LoRA-SFT"
        PPO = "ppo", "LoRA-PPO"
        DPO = "dpo", "DPO"
        KTO = "kto", "KTO"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    algorithm = models.CharField(max_length=10, choices=Algorithm.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    config = models.JSONField(default=dict, blank=True)
    snapshot = models.ForeignKey(
        DataSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    reward_run = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="PPO: the reward model it optimises.",
    )
    parent_version = models.CharField(max_length=100, blank=True, default="base")
    version = models.CharField(max_length=100, blank=True, help_text="What it produced.")
    artifact_path = models.CharField(max_length=500, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.algorithm} run #{self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED}


class RunMetric(models.Model):
    """One logged step of a run (reward_mean, kl, entropy, ...), appended while it runs."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="series")
    step = models.PositiveIntegerField()
    values = models.JSONField()
    logged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "step", "id"]

    def __str__(self) -> str:
        return f"run {self.run_id} step {self.step}"


class Evaluation(models.Model):
    """An adapter (or ``base``) answering a reference set, judged: the figures the gate
    compares and the report shows."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    adapter_version = models.CharField(max_length=100)
    reference_set = models.CharField(max_length=60)
    limit = models.PositiveIntegerField(null=True, blank=True)
    judge_version = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.adapter_version} on {self.reference_set} #{self.pk}"


class EvaluationItem(models.Model):
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="items")
    reference = models.ForeignKey(Reference, null=True, on_delete=models.SET_NULL, related_name="+")
    answer = models.ForeignKey(Answer, null=True, on_delete=models.SET_NULL, related_name="+")
    question = models.TextField()
    response = models.TextField()
    score = models.FloatField(null=True)
    comment = models.TextField(blank=True)
    similarity = models.FloatField(null=True)
    key_fact_recall = models.FloatField(null=True)
    cites_gold_page = models.BooleanField(null=True)

    class Meta:
        ordering = ["evaluation", "id"]

    def __str__(self) -> str:
        return self.question[:80]


class LoopRun(models.Model):
    """One pass of the nightly chain: build pairs, train the reward model, run PPO,
    evaluate, promote if the gate passes. Each step's result is kept."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PROMOTED = "promoted", "Candidate promoted"
        KEPT = "kept", "Served adapter kept"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    key = models.CharField(
        max_length=100,
        blank=True,
        help_text="What started it once (the night, 'bootstrap'): a second delivery finds it.",
    )
    algorithm = models.CharField(max_length=10, blank=True)
    library_state = models.CharField(
        max_length=64,
        blank=True,
        help_text="The library and validated references its supervised stage learned from.",
    )
    steps = models.JSONField(default=list, blank=True)
    served_before = models.CharField(max_length=100, blank=True)
    candidate = models.CharField(max_length=100, blank=True)
    gate = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=~models.Q(key=""), name="one_loop_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"loop #{self.pk} ({self.status})"
