"""The training pages' charts and tables."""

from __future__ import annotations

from typing import Any

from apps.review import charts
from apps.training import selectors
from apps.training.models import Evaluation, TrainingRun

REPORT_METRICS = [
    ("ai_score_mean", "Mean AI score (0-5)"),
    ("share_above_3", "Share above 3"),
    ("share_below_3", "Share below 3"),
    ("semantic_similarity", "Semantic similarity to the reference"),
    ("key_fact_recall", "Key-fact recall"),
    ("citation_accuracy", "Citation accuracy"),
]


def run_context(run: TrainingRun) -> dict[str, Any]:
    names = selectors.run_metric_names(run)
    primary = "reward_mean" if "reward_mean" in names else ("loss" if "loss" in names else None)
    series_charts = []
    for name in [
        primary,
        *[n for n in ("kl", "entropy", "clip_fraction", "response_length") if n in names],
    ]:
        if name is None:
            continue
        series_charts.append(
            charts.line_chart([(name, selectors.run_series(run, name))], title=f"{name} per step")
        )
    return {"run": run, "charts": series_charts, "metric_names": names, "live": not run.finished}


def comparison_context(served: Evaluation, candidate: Evaluation) -> dict[str, Any]:
    before = selectors.score_distribution(served)
    after = selectors.score_distribution(candidate)
    return {
        "served": served,
        "candidate": candidate,
        "rows": [
            (label, served.metrics.get(key), candidate.metrics.get(key))
            for key, label in REPORT_METRICS
        ],
        "before_chart": charts.bar_chart(
            [(f"{s:g}", n) for s, n in before.items()],
            title=f"Scores before: {served.adapter_version}",
            colors=[charts.score_color(s) for s in before],
            y_max=max([*before.values(), *after.values(), 1]),
        ),
        "after_chart": charts.bar_chart(
            [(f"{s:g}", n) for s, n in after.items()],
            title=f"Scores after: {candidate.adapter_version}",
            colors=[charts.score_color(s) for s in after],
            y_max=max([*before.values(), *after.values(), 1]),
        ),
        "changed": selectors.compared_items(served, candidate),
    }
