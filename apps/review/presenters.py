"""The analytics page: selectors' figures turned into charts and table rows."""

from __future__ import annotations

from typing import Any

from apps.review import charts, selectors

NEGATIVE, NEUTRAL, POSITIVE = charts.SCORE_SCALE[0], charts.SCORE_SCALE[2], charts.SCORE_SCALE[4]


def analytics_context() -> dict[str, Any]:
    users = selectors.user_score_distribution()
    labels = ["Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree"]
    ai = selectors.ai_score_distribution()
    trend = selectors.ai_score_trend()
    per_document = selectors.ai_score_per_document()
    negative = users.share(users.negative)
    return {
        "users": users,
        "negative_percent": None if negative is None else 100 * negative,
        "user_chart": charts.bar_chart(
            [(f"{n} {labels[n - 1]}", users.counts[n]) for n in range(1, 6)],
            title="User ratings",
            colors=[charts.score_color(n, low=1, high=5) for n in range(1, 6)],
        ),
        "share_chart": charts.stacked_share_bar(
            [
                ("Negative (1-2)", users.negative, NEGATIVE),
                ("Neutral (3)", users.neutral, NEUTRAL),
                ("Positive (4-5)", users.positive, POSITIVE),
            ],
            title="Share of negative feedback",
        ),
        "ai_total": sum(ai.values()),
        "ai_mean": selectors.ai_score_mean(),
        "ai_chart": charts.bar_chart(
            [(f"{score:g}", count) for score, count in ai.items()],
            title="AI judge scores",
            colors=[charts.score_color(score) for score in ai],
        ),
        "trend_chart": charts.line_chart(
            list(trend.items()), title="Mean AI score per day", y_min=0, y_max=5
        ),
        "document_chart": charts.horizontal_bar_chart(
            [(f"{name} ({n})", mean) for name, mean, n in per_document],
            title="Mean AI score per document (answers)",
            x_max=5,
        ),
        "agreement": selectors.agreement_per_version(),
        "effort": selectors.review_effort(),
        "exports": selectors.EXPORTS,
    }
