from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from apps.training.models import DataSnapshot, Evaluation, LoopRun, TrainingRun
from apps.training.services.runs import run_cancel


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "algorithm",
        "status",
        "progress",
        "version",
        "parent_version",
        "snapshot",
        "created_at",
        "report",
    ]
    list_filter = ["algorithm", "status", "created_at"]
    search_fields = ["version", "error", "log"]
    date_hierarchy = "created_at"
    list_select_related = ["snapshot"]
    actions = ["cancel"]

    @admin.display(description="Progress")
    def progress(self, obj: TrainingRun) -> str:
        return f"{obj.progress_done}/{obj.progress_total}" if obj.progress_total else "-"

    @admin.display(description="Report")
    def report(self, obj: TrainingRun) -> str:
        return format_html(
            '<a href="{}">chart and logs</a>', reverse("training:run", args=[obj.pk])
        )

    @admin.action(
        description="Cancel the selected runs (nothing they produced is kept)",
        permissions=["cancel"],
    )
    def cancel(self, request: HttpRequest, queryset: QuerySet[TrainingRun]) -> None:
        for run in queryset:
            run_cancel(run_id=run.pk)
        self.message_user(
            request, f"Cancellation asked for {queryset.count()} runs.", messages.SUCCESS
        )

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        # Stopping a run stops the model that would be trained: the change permission on
        # runs, not merely being staff (every field stays read-only either way).
        return request.user.has_perm("training.change_trainingrun")

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [f.name for f in TrainingRun._meta.fields]


@admin.register(DataSnapshot)
class DataSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "size", "counts", "sha256", "created_at"]
    list_filter = ["kind", "created_at"]


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "adapter_version",
        "reference_set",
        "status",
        "score",
        "judge_version",
        "created_at",
    ]
    list_filter = ["reference_set", "status", "adapter_version"]

    @admin.display(description="Mean AI score")
    def score(self, obj: Evaluation) -> str:
        value = obj.metrics.get("ai_score_mean")
        return "-" if value is None else f"{value:.2f}"


@admin.register(LoopRun)
class LoopRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "status",
        "served_before",
        "candidate",
        "started_at",
        "finished_at",
        "report",
    ]
    list_filter = ["status", "started_at"]

    @admin.display(description="Report")
    def report(self, obj: LoopRun) -> str:
        return format_html('<a href="{}">report</a>', reverse("training:loop", args=[obj.pk]))
