"""What every review queue shares: SME-only access, the time-on-item clock, and the
filters by reviewer, document and score band."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join

from apps.accounts.admin import SmeAdmin
from apps.core.admin_filters import IdListFilter
from apps.documents.models import Document
from apps.review import services
from apps.review.models import Queue, ReviewDecision

SCORE_BANDS = {
    "low": ("0 - 1.5", 0.0, 1.5),
    "poor": ("2 - 2.5", 2.0, 2.5),
    "fair": ("3 - 3.5", 3.0, 3.5),
    "good": ("4 - 5", 4.0, 5.0),
}


def score_band(score: float | None) -> str:
    if score is None:
        return "-"
    for label, low, high in SCORE_BANDS.values():
        if low <= score <= high:
            return label
    return "-"


class ReviewQueueAdmin(SmeAdmin):
    """A queue SMEs work through. Items are never added or deleted here; every
    decision goes through a service that records who, when, why and the time it took."""

    queue: Queue
    actions_on_bottom = True
    list_per_page = 50

    # --- the clock: from opening an item (or the list) to deciding --------------------
    def _key(self, object_id: object = "list") -> str:
        return f"review-open:{self.queue}:{object_id}"

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if request.method == "GET":
            request.session[self._key()] = time.time()
        return super().changelist_view(request, extra_context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if request.method == "GET":
            request.session[self._key(object_id)] = time.time()
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Decisions")
    def history(self, obj: Any) -> str:
        """Every decision on the item, so the SME sees what was decided before."""
        return _history(self.queue, obj.pk)

    def item_seconds(self, request: HttpRequest, object_id: object) -> float | None:
        opened = request.session.pop(self._key(object_id), None)
        return None if opened is None else time.time() - float(opened)

    def bulk_decide(
        self, request: HttpRequest, queryset: QuerySet, decide: Callable[..., object]
    ) -> None:
        """Applies one decision to every selected item still to decide, through
        ``decide(pk, seconds=..., undecided_only=True)``, sharing the time since the list
        was shown among them. Items already decided (before, or by someone else meanwhile)
        are skipped and counted: a bulk action never replaces an expert's decision."""
        field, todo = services.UNDECIDED[self.queue]
        selected = queryset.count()
        ids = list(queryset.filter(**{field: todo}).values_list("pk", flat=True))
        skipped: Counter[str] = Counter({services.ALREADY_DECIDED: selected - len(ids)})
        refused: list[str] = []
        each = self.bulk_seconds(request, len(ids))
        decided = 0
        for pk in ids:
            try:
                decide(pk, seconds=each, undecided_only=True)
            except services.AlreadyDecided as exc:
                skipped[str(exc)] += 1
            except services.InvalidDecision as exc:
                refused.append(f"#{pk}: {exc}")
            else:
                decided += 1
        self.message_user(request, f"{decided} decided.", messages.SUCCESS)
        for why, count in skipped.items():
            if count:
                self.message_user(request, f"{count} skipped: {why}.", messages.WARNING)
        if refused:
            self.message_user(request, "Not decided: " + "; ".join(refused), messages.ERROR)

    def bulk_seconds(self, request: HttpRequest, count: int) -> float | None:
        """A bulk action's time since the list was shown, shared by the items it decided;
        the clock restarts for the next action on the same page."""
        opened = request.session.get(self._key())
        request.session[self._key()] = time.time()
        if opened is None or count < 1:
            return None
        return (time.time() - float(opened)) / count


class ReviewerFilter(IdListFilter):
    title = "reviewer"
    parameter_name = "reviewer"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        ids = ReviewDecision.objects.filter(queue=model_admin.queue).values("reviewer")
        users = get_user_model().objects.filter(pk__in=ids).order_by("username")
        return [(str(u.pk), u.get_username()) for u in users]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        reviewer_id = self.value()
        if not reviewer_id:
            return queryset
        decided = ReviewDecision.objects.filter(
            queue=self.model_admin.queue, reviewer_id=int(reviewer_id)
        ).values("object_id")
        return queryset.filter(pk__in=decided)

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        self.model_admin = model_admin
        super().__init__(request, params, model, model_admin)


class DocumentFilter(IdListFilter):
    """Items about one document: the answer cited it (or the reference comes from it)."""

    title = "document"
    parameter_name = "document"
    lookup: str = "answer__citations__contains"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        documents = Document.objects.filter(is_current=True).order_by("title")
        return [(str(d.pk), d.title[:60]) for d in documents]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        document_id = self.value()
        if not document_id:
            return queryset
        if self.lookup.endswith("__contains"):
            return queryset.filter(**{self.lookup: [{"document_id": int(document_id)}]})
        return queryset.filter(**{self.lookup: document_id})


class ScoreBandFilter(admin.SimpleListFilter):
    title = "score band"
    parameter_name = "band"
    field: str = "score"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _, _) in SCORE_BANDS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        band = self.value()
        if band not in SCORE_BANDS:
            return queryset
        _, low, high = SCORE_BANDS[band]
        return queryset.filter(**{f"{self.field}__gte": low, f"{self.field}__lte": high})


class ToDoFilter(admin.SimpleListFilter):
    """Opens on the items still waiting for a decision; "All" shows the rest too."""

    title = "state"
    parameter_name = "state"
    field: str = ""
    todo: str = ""
    states: list[tuple[str, str]] = []

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*[(v, label) for v, label in self.states if v != self.todo], ("all", "All")]

    def choices(self, changelist: Any) -> Any:
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "To do",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "all":
            return queryset
        return queryset.filter(**{self.field: value or self.todo})


def _history(queue: Queue, object_id: int) -> str:
    decisions = ReviewDecision.objects.filter(queue=queue, object_id=object_id).select_related(
        "reviewer"
    )
    if not decisions:
        return "-"
    return format_html(
        "<ul>{}</ul>",
        format_html_join(
            "",
            "<li>{} {} by {}: {} ({} s)</li>",
            (
                (
                    d.decided_at.strftime("%Y-%m-%d %H:%M"),
                    d.action,
                    d.reviewer.get_username(),
                    d.reason or "no reason given",
                    "?" if d.seconds is None else f"{d.seconds:.0f}",
                )
                for d in decisions
            ),
        ),
    )
