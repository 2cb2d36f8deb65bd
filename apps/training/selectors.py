from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from apps.training.models import Evaluation, EvaluationItem, LoopRun, RunMetric, TrainingRun


def runs_recent(limit: int = 30) -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related("snapshot").order_by("-created_at")[:limit]


def loops_recent(limit: int = 10) -> QuerySet[LoopRun]:
    return LoopRun.objects.order_by("-started_at")[:limit]


def run_series(run: TrainingRun, metric: str) -> list[tuple[str, float | None]]:
    rows = RunMetric.objects.filter(run=run).order_by("step", "id").values_list("step", "values")
    return [(str(step), values.get(metric)) for step, values in rows if metric in values]


def run_metric_names(run: TrainingRun) -> list[str]:
    """Every metric the run logged (TRL logs its end-of-training summary under other names)."""
    names: set[str] = set()
    for values in RunMetric.objects.filter(run=run).values_list("values", flat=True):
        names.update(values)
    return sorted(names)


@dataclass(frozen=True)
class ChangedQuestion:
    question: str
    served_score: float | None
    candidate_score: float | None
    served_answer: str
    candidate_answer: str

    @property
    def change(self) -> float:
        return (self.candidate_score or 0) - (self.served_score or 0)


def compared_items(
    served: Evaluation, candidate: Evaluation, limit: int = 10
) -> list[ChangedQuestion]:
    """The questions whose score changed most between two evaluations of the same set."""
    before = {i.reference_id: i for i in EvaluationItem.objects.filter(evaluation=served)}
    rows = []
    for item in EvaluationItem.objects.filter(evaluation=candidate):
        other = before.get(item.reference_id)
        if other is None:
            continue
        rows.append(
            ChangedQuestion(item.question, other.score, item.score, other.response, item.response)
        )
    rows.sort(key=lambda r: abs(r.change), reverse=True)
    return rows[:limit]


def score_distribution(evaluation: Evaluation) -> dict[float, int]:
    counts = {x / 2: 0 for x in range(11)}
    for score in EvaluationItem.objects.filter(
        evaluation=evaluation, score__isnull=False
    ).values_list("score", flat=True):
        if score is not None:  # always, by the filter
            counts[float(score)] += 1
    return counts
