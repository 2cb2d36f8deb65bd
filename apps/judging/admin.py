from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.admin import SmeAdmin
from apps.judging.models import Judgement, JudgeRubric
from apps.judging.services import rubric_activate

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups


@admin.register(JudgeRubric)
class JudgeRubricAdmin(admin.ModelAdmin):
    """A changed rubric is a new version: judgements keep the version they were made under."""

    list_display = ["version", "is_active", "created_at"]
    actions = ["activate"]

    def get_fields(self, request: HttpRequest, obj: JudgeRubric | None = None) -> _FieldGroups:
        return ["version", "text", "is_active", "created_at"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: JudgeRubric | None = None
    ) -> list[str]:
        # The wording of a version that judged anything must not change under its scores.
        if obj is not None:
            return ["version", "text", "is_active", "created_at"]
        return ["is_active", "created_at"]

    @admin.action(description="Use this rubric from now on", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[JudgeRubric]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one rubric.", messages.ERROR)
            return
        rubric_activate(rubric_id=queryset.get().pk)
        self.message_user(request, "Rubric activated.", messages.SUCCESS)


@admin.register(Judgement)
class JudgementAdmin(SmeAdmin):
    """Every judgement, including failed ones waiting for a retry (read-only)."""

    list_display = ["answer", "status", "score", "judge_version", "attempts", "judged_at"]
    list_filter = ["status", "backend", "judge_version", "review_state"]
    search_fields = ["answer__question", "comment", "error"]
    date_hierarchy = "created_at"
    list_select_related = ["answer"]
    readonly_fields = [f.name for f in Judgement._meta.fields]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # validated in the review queue, where decisions are recorded
