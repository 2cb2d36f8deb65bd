from __future__ import annotations

from django.contrib import admin

from apps.feedback.models import Feedback, FeedbackRevision


class RevisionInline(admin.TabularInline):
    model = FeedbackRevision
    extra = 0
    can_delete = False
    fields = readonly_fields = ("score", "better_answer", "note", "created_at")

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["answer", "score", "has_better_answer", "user", "updated_at"]
    list_filter = ["score", "updated_at"]
    search_fields = ["answer__question", "better_answer", "note"]
    list_select_related = ["answer", "user"]
    exclude = ["session_digest"]
    readonly_fields = [
        "answer",
        "user",
        "score",
        "better_answer",
        "note",
        "created_at",
        "updated_at",
    ]
    inlines = [RevisionInline]

    @admin.display(boolean=True, description="Better answer")
    def has_better_answer(self, obj: Feedback) -> bool:
        return bool(obj.better_answer)
