"""Reads for the review queues' item pages, the analytics page and the exports."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Avg, Count
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.feedback.models import Feedback
from apps.judging.models import Judgement
from apps.qa.models import Origin
from apps.references.models import Reference
from apps.review.models import Queue, ReviewDecision
from ml.agreement import Agreement, agreement, spearman

HALF_POINTS = [x / 2 for x in range(11)]


def override_reason_last(*, judgement_id: int) -> str:
    """Why the SME last overrode this judgement's score ("" if never)."""
    reason = (
        ReviewDecision.objects.filter(
            queue=Queue.JUDGEMENTS, object_id=judgement_id, action="override"
        )
        .values_list("reason", flat=True)
        .first()
    )
    return reason or ""


def better_answer_accepted_text(*, feedback_id: int) -> str | None:
    """The text an SME accepted as a reference from this feedback, None if none is."""
    return (
        Reference.objects.filter(feedback_id=feedback_id, status=Reference.Status.VALIDATED)
        .values_list("answer", flat=True)
        .first()
    )


@dataclass(frozen=True)
class UserScores:
    counts: dict[int, int]
    total: int

    @property
    def negative(self) -> int:
        return self.counts[1] + self.counts[2]

    @property
    def neutral(self) -> int:
        return self.counts[3]

    @property
    def positive(self) -> int:
        return self.counts[4] + self.counts[5]

    def share(self, count: int) -> float | None:
        return count / self.total if self.total else None


def user_score_distribution() -> UserScores:
    counts = dict.fromkeys(range(1, 6), 0)
    for row in Feedback.objects.values("score").annotate(n=Count("id")):
        counts[row["score"]] = row["n"]
    return UserScores(counts=counts, total=sum(counts.values()))


def judged() -> Any:
    """Judgements of answers users asked (not of evaluation or sampling runs)."""
    return Judgement.objects.filter(
        status=Judgement.Status.DONE, score__isnull=False, answer__origin=Origin.USER
    )


def judge_versions() -> list[str]:
    return list(
        judged().values_list("judge_version", flat=True).distinct().order_by("judge_version")
    )


def ai_score_distribution(*, judge_version: str | None = None) -> dict[float, int]:
    queryset = judged()
    if judge_version:
        queryset = queryset.filter(judge_version=judge_version)
    counts = dict.fromkeys(HALF_POINTS, 0)
    for row in queryset.values("score").annotate(n=Count("id")):
        counts[float(row["score"])] = row["n"]
    return counts


def ai_score_mean(*, judge_version: str | None = None) -> float | None:
    queryset = judged()
    if judge_version:
        queryset = queryset.filter(judge_version=judge_version)
    return queryset.aggregate(mean=Avg("score"))["mean"]


def ai_score_trend(*, days: int = 60) -> dict[str, list[tuple[str, float | None]]]:
    """Mean AI score per day and judge version over the last ``days`` days (None: no answers
    judged that day)."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        judged()
        .filter(answer__created_at__gte=since)
        .annotate(day=TruncDate("answer__created_at"))
        .values("judge_version", "day")
        .annotate(mean=Avg("score"))
        .order_by("day")
    )
    by_version: dict[str, dict[str, float]] = defaultdict(dict)
    all_days: set[str] = set()
    for row in rows:
        day = row["day"].isoformat()
        all_days.add(day)
        by_version[row["judge_version"]][day] = round(row["mean"], 2)
    ordered = sorted(all_days)
    return {v: [(d, means.get(d)) for d in ordered] for v, means in sorted(by_version.items())}


def ai_score_per_document(*, limit: int = 15) -> list[tuple[str, float, int]]:
    """(document, mean AI score, answers) by the document the answer cited first."""
    rows = (
        judged()
        .annotate(document=KeyTextTransform("document", KeyTransform("0", "answer__citations")))
        .exclude(document__isnull=True)
        .values("document")
        .annotate(mean=Avg("score"), n=Count("id"))
        .order_by("mean")[:limit]
    )
    return [(r["document"], round(r["mean"], 2), r["n"]) for r in rows]


@dataclass(frozen=True)
class VersionAgreement:
    judge_version: str
    ai_vs_sme: Agreement
    ai_vs_users_spearman: float | None
    ai_vs_users_n: int


def agreement_per_version() -> list[VersionAgreement]:
    """AI scores against the scores SMEs validated (accepted or overrode), per judge
    version; and, for a second view, against users' 1-5 ratings of the same answers."""
    results = []
    for version in judge_versions():
        validated = (
            judged()
            .filter(judge_version=version, validated_score__isnull=False)
            .exclude(review_state=Judgement.Review.UNREVIEWED)
        )
        pairs = list(validated.values_list("score", "validated_score"))
        rated = (
            judged()
            .filter(judge_version=version, answer__feedback__isnull=False)
            .values_list("score", "answer__feedback__score")
        )
        ai, users = [float(a) for a, _ in rated], [float(u) for _, u in rated]
        results.append(
            VersionAgreement(
                judge_version=version,
                ai_vs_sme=agreement([p[0] for p in pairs], [p[1] for p in pairs]),
                ai_vs_users_spearman=spearman(ai, users),
                ai_vs_users_n=len(ai),
            )
        )
    return results


@dataclass(frozen=True)
class ReviewEffort:
    queue: str
    label: str
    waiting: int
    decided: int
    mean_seconds: float | None


def review_effort() -> list[ReviewEffort]:
    waiting = {
        Queue.JUDGEMENTS: judged().filter(review_state=Judgement.Review.UNREVIEWED).count(),
        Queue.NEGATIVE_FEEDBACK: Feedback.objects.filter(
            score__lte=2, triage_state=Feedback.Triage.NEW
        ).count(),
        Queue.BETTER_ANSWERS: Feedback.objects.filter(
            better_answer_state=Feedback.BetterAnswer.PENDING
        ).count(),
        Queue.SYNTHETIC: Reference.objects.filter(
            source=Reference.Source.SYNTHETIC, status=Reference.Status.PENDING
        ).count(),
    }
    stats = {
        row["queue"]: row
        for row in ReviewDecision.objects.values("queue").annotate(
            n=Count("id"), mean=Avg("seconds")
        )
    }
    return [
        ReviewEffort(
            queue=queue.value,
            label=queue.label,
            waiting=waiting[queue],
            decided=stats[queue]["n"] if queue in stats else 0,
            mean_seconds=stats[queue]["mean"] if queue in stats else None,
        )
        for queue in Queue
    ]


# --- Exports ------------------------------------------------------------------------------
EXPORTS = ("feedback", "judgements", "references")


def export_rows(kind: str) -> Iterator[dict[str, Any]]:
    """Flat records, one per row, oldest first; streamed so an export never loads it all."""
    if kind == "feedback":
        feedback = Feedback.objects.select_related("answer", "user").order_by("pk")
        for f in feedback.iterator(chunk_size=500):
            yield {
                "id": f.pk,
                "answer_id": f.answer_id,
                "question": f.answer.question,
                "answer": f.answer.text,
                "adapter_version": f.answer.adapter_version,
                "user": f.user.get_username(),
                "score": f.score,
                "better_answer": f.better_answer,
                "note": f.note,
                "triage_state": f.triage_state,
                "better_answer_state": f.better_answer_state,
                "created_at": f.created_at.isoformat(),
                "updated_at": f.updated_at.isoformat(),
            }
    elif kind == "judgements":
        judgements = Judgement.objects.select_related("answer").order_by("pk")
        for j in judgements.iterator(chunk_size=500):
            yield {
                "id": j.pk,
                "answer_id": j.answer_id,
                "question": j.answer.question,
                "answer": j.answer.text,
                "adapter_version": j.answer.adapter_version,
                "reference_id": j.reference_id,
                "status": j.status,
                "score": j.score,
                "comment": j.comment,
                "judge_version": j.judge_version,
                "backend": j.backend,
                "model": j.model,
                "prompt_version": j.prompt_version,
                "review_state": j.review_state,
                "validated_score": j.validated_score,
                "error": j.error,
                "judged_at": j.judged_at.isoformat() if j.judged_at else None,
            }
    elif kind == "references":
        references = Reference.objects.select_related("reference_set").order_by("pk")
        for r in references.iterator(chunk_size=500):
            yield {
                "id": r.external_id or f"ref-{r.pk}",
                "set": r.reference_set.name,
                "question": r.question,
                "reference_answer": r.answer,
                "answerable": r.answerable,
                "document": r.document_name,
                "page": r.page,
                "section": r.section,
                "quote": r.quote,
                "key_facts": r.key_facts,
                "kind": r.kind,
                "source": r.source,
                "status": r.status,
            }
    else:
        raise ValueError(f"unknown export {kind!r}: choose one of {', '.join(EXPORTS)}")
