"""The four SME review queues in Django admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from apps.accounts.admin import SmeAdmin
from apps.accounts.signed_in import signed_in_user
from apps.feedback.models import Feedback
from apps.judging.models import Judgement
from apps.references.models import Reference
from apps.review import forms, services
from apps.review.models import (
    BetterAnswer,
    JudgementToValidate,
    NegativeFeedback,
    Queue,
    ReviewDecision,
    SyntheticPair,
)
from apps.review.queue_admin import (
    DocumentFilter,
    ReviewerFilter,
    ReviewQueueAdmin,
    ScoreBandFilter,
    ToDoFilter,
    score_band,
)


def _passages(retrieved: list[dict[str, Any]]) -> str:
    if not retrieved:
        return "-"
    return format_html(
        "<ol>{}</ol>",
        format_html_join(
            "",
            "<li>{} p.{} §{} (similarity {})</li>",
            (
                (
                    r.get("document", ""),
                    r.get("page", ""),
                    r.get("section", ""),
                    r.get("similarity"),
                )
                for r in retrieved
            ),
        ),
    )


class AnswerContext:
    """Read-only views of the answer a feedback queue item is about."""

    @admin.display(description="Question", ordering="answer__question")
    def question(self, obj: Feedback) -> str:
        return obj.answer.question[:120]

    @admin.display(description="Bot answer")
    def bot_answer(self, obj: Feedback) -> str:
        return obj.answer.text

    @admin.display(description="Passages the bot was given")
    def passages(self, obj: Feedback) -> str:
        return _passages(obj.answer.retrieved)


# --- 1. AI judgements ---------------------------------------------------------------------
class JudgementStateFilter(ToDoFilter):
    field, todo = services.UNDECIDED[Queue.JUDGEMENTS]
    states = Judgement.Review.choices


class JudgementDocumentFilter(DocumentFilter):
    lookup = "answer__citations__contains"


@admin.register(JudgementToValidate)
class JudgementQueueAdmin(ReviewQueueAdmin):
    queue = Queue.JUDGEMENTS
    form = forms.JudgementDecisionForm
    list_display = [
        "question",
        "score",
        "band",
        "validated_score",
        "review_state",
        "judge_version",
        "created_at",
    ]
    list_filter = [
        JudgementStateFilter,
        ScoreBandFilter,
        JudgementDocumentFilter,
        "judge_version",
        ReviewerFilter,
        "created_at",
    ]
    search_fields = ["answer__question", "answer__text", "comment"]
    date_hierarchy = "created_at"
    ordering = ["score", "-created_at"]
    list_select_related = ["answer"]
    actions = ["accept_scores"]
    readonly_fields = [
        "question",
        "bot_answer",
        "reference_answer",
        "score",
        "comment",
        "passages",
        "judge_version",
        "review_state",
        "validated_score",
        "history",
    ]
    fieldsets = [
        (None, {"fields": ["question", "bot_answer", "reference_answer", "passages"]}),
        ("AI judgement", {"fields": ["score", "comment", "judge_version"]}),
        ("Your decision", {"fields": ["decision", "new_score", "reason"]}),
        ("Review so far", {"fields": ["review_state", "validated_score", "history"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[JudgementToValidate]:
        return super().get_queryset(request).filter(status=Judgement.Status.DONE)

    @admin.display(description="Question", ordering="answer__question")
    def question(self, obj: Judgement) -> str:
        return obj.answer.question[:120]

    @admin.display(description="Band", ordering="score")
    def band(self, obj: Judgement) -> str:
        return score_band(obj.score)

    @admin.display(description="Bot answer")
    def bot_answer(self, obj: Judgement) -> str:
        return obj.answer.text

    @admin.display(description="Reference answer")
    def reference_answer(self, obj: Judgement) -> str:
        return obj.inputs.get("reference") or "(none: judged on the retrieved passages)"

    @admin.display(description="Passages the bot was given")
    def passages(self, obj: Judgement) -> str:
        return _passages(obj.answer.retrieved)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        services.judgement_validate(
            judgement_id=obj.pk,
            reviewer=signed_in_user(request),
            score=data.get("new_score") if data["decision"] == "override" else None,
            reason=data.get("reason", ""),
            seconds=self.item_seconds(request, obj.pk),
        )

    @admin.action(description="Accept the AI scores of the selected judgements")
    def accept_scores(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.bulk_decide(
            request,
            queryset,
            lambda pk, **bulk: services.judgement_validate(
                judgement_id=pk, reviewer=signed_in_user(request), **bulk
            ),
        )


# --- 2. Negative feedback -----------------------------------------------------------------
class TriageStateFilter(ToDoFilter):
    field, todo = services.UNDECIDED[Queue.NEGATIVE_FEEDBACK]
    states = Feedback.Triage.choices


@admin.register(NegativeFeedback)
class NegativeFeedbackAdmin(AnswerContext, ReviewQueueAdmin):
    queue = Queue.NEGATIVE_FEEDBACK
    form = forms.TriageForm
    list_display = ["question", "score", "note_excerpt", "triage_state", "user", "updated_at"]
    list_filter = [
        TriageStateFilter,
        "score",
        JudgementDocumentFilter,
        ReviewerFilter,
        "updated_at",
    ]
    search_fields = ["answer__question", "answer__text", "note", "better_answer"]
    date_hierarchy = "updated_at"
    ordering = ["score", "-updated_at"]
    list_select_related = ["answer", "user"]
    actions = ["confirm", "documents", "dismiss"]
    readonly_fields = [
        "question",
        "bot_answer",
        "score",
        "note",
        "better_answer",
        "passages",
        "triage_state",
        "history",
    ]
    fields = [*readonly_fields, "decision", "reason"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[NegativeFeedback]:
        return super().get_queryset(request).filter(score__lte=2)

    @admin.display(description="Note")
    def note_excerpt(self, obj: Feedback) -> str:
        return obj.note[:80]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.feedback_triage(
            feedback_id=obj.pk,
            reviewer=signed_in_user(request),
            state=form.cleaned_data["decision"],
            reason=form.cleaned_data.get("reason", ""),
            seconds=self.item_seconds(request, obj.pk),
        )

    def _triage(self, request: HttpRequest, queryset: QuerySet, state: str) -> None:
        self.bulk_decide(
            request,
            queryset,
            lambda pk, **bulk: services.feedback_triage(
                feedback_id=pk, reviewer=signed_in_user(request), state=state, **bulk
            ),
        )

    @admin.action(description="Confirm: the answer is wrong")
    def confirm(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._triage(request, queryset, Feedback.Triage.CONFIRMED)

    @admin.action(description="The documents need fixing")
    def documents(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._triage(request, queryset, Feedback.Triage.DOCUMENT)

    @admin.action(description="Dismiss: the answer is fine")
    def dismiss(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._triage(request, queryset, Feedback.Triage.DISMISSED)


# --- 3. Better answers --------------------------------------------------------------------
class BetterAnswerStateFilter(ToDoFilter):
    field, todo = services.UNDECIDED[Queue.BETTER_ANSWERS]
    states = [c for c in Feedback.BetterAnswer.choices if c[0] != Feedback.BetterAnswer.NONE]


@admin.register(BetterAnswer)
class BetterAnswerAdmin(AnswerContext, ReviewQueueAdmin):
    queue = Queue.BETTER_ANSWERS
    form = forms.BetterAnswerForm
    list_display = [
        "question",
        "better_excerpt",
        "score",
        "better_answer_state",
        "user",
        "updated_at",
    ]
    list_filter = [BetterAnswerStateFilter, "score", JudgementDocumentFilter, ReviewerFilter]
    search_fields = ["answer__question", "better_answer", "note"]
    date_hierarchy = "updated_at"
    ordering = ["-updated_at"]
    list_select_related = ["answer", "user"]
    actions = ["accept", "reject"]
    readonly_fields = [
        "question",
        "bot_answer",
        "score",
        "better_answer",
        "note",
        "passages",
        "better_answer_state",
        "reference_now",
        "history",
    ]
    fields = [*readonly_fields, "decision", "accepted_text", "reason"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[BetterAnswer]:
        return super().get_queryset(request).exclude(better_answer="")

    @admin.display(description="Better answer")
    def better_excerpt(self, obj: Feedback) -> str:
        return obj.better_answer[:100]

    @admin.display(description="Reference made from it")
    def reference_now(self, obj: Feedback) -> str:
        reference = Reference.objects.filter(feedback=obj).first()
        if reference is None:
            return "-"
        return format_html("{} ({})", reference.answer, reference.get_status_display())

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        services.better_answer_decide(
            feedback_id=obj.pk,
            reviewer=signed_in_user(request),
            accept=data["decision"] == "accept",
            answer_text=(data.get("accepted_text") or "").strip() or None,
            reason=data.get("reason", ""),
            seconds=self.item_seconds(request, obj.pk),
        )

    def _decide(self, request: HttpRequest, queryset: QuerySet, accept: bool) -> None:
        self.bulk_decide(
            request,
            queryset,
            lambda pk, **bulk: services.better_answer_decide(
                feedback_id=pk, reviewer=signed_in_user(request), accept=accept, **bulk
            ),
        )

    @admin.action(description="Accept as training references")
    def accept(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, True)

    @admin.action(description="Reject")
    def reject(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, False)


# --- 4. Synthetic pairs -------------------------------------------------------------------
class SyntheticStateFilter(ToDoFilter):
    field, todo = services.UNDECIDED[Queue.SYNTHETIC]
    states = Reference.Status.choices


class ReferenceDocumentFilter(DocumentFilter):
    lookup = "document_id"


@admin.register(SyntheticPair)
class SyntheticPairAdmin(ReviewQueueAdmin):
    queue = Queue.SYNTHETIC
    form = forms.SyntheticForm
    list_display = ["question", "answer_excerpt", "document_name", "page", "status", "created_at"]
    list_filter = [SyntheticStateFilter, ReferenceDocumentFilter, ReviewerFilter, "created_at"]
    search_fields = ["question", "answer", "quote"]
    date_hierarchy = "created_at"
    ordering = ["document_name", "page"]
    actions = ["validate", "reject"]
    readonly_fields = [
        "question",
        "answer",
        "quote",
        "document_name",
        "page",
        "section",
        "generated_by",
    ]
    fields = [*readonly_fields, "decision", "corrected_question", "corrected_answer", "reason"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SyntheticPair]:
        return super().get_queryset(request).filter(source=Reference.Source.SYNTHETIC)

    @admin.display(description="Answer")
    def answer_excerpt(self, obj: Reference) -> str:
        return obj.answer[:100]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        services.synthetic_decide(
            reference_id=obj.pk,
            reviewer=signed_in_user(request),
            accept=data["decision"] == "validate",
            question=data.get("corrected_question") or None,
            answer=data.get("corrected_answer") or None,
            reason=data.get("reason", ""),
            seconds=self.item_seconds(request, obj.pk),
        )

    def _decide(self, request: HttpRequest, queryset: QuerySet, accept: bool) -> None:
        self.bulk_decide(
            request,
            queryset,
            lambda pk, **bulk: services.synthetic_decide(
                reference_id=pk, reviewer=signed_in_user(request), accept=accept, **bulk
            ),
        )

    @admin.action(description="Validate the selected pairs")
    def validate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, True)

    @admin.action(description="Reject the selected pairs")
    def reject(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, False)


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(SmeAdmin):
    """The audit trail: every decision, for measuring review effort. Read-only."""

    list_display = ["queue", "object_id", "action", "reviewer", "seconds", "decided_at"]
    list_filter = ["queue", "action", "reviewer", "decided_at"]
    date_hierarchy = "decided_at"
    search_fields = ["reason"]
    list_select_related = ["reviewer"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
