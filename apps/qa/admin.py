from __future__ import annotations

from django.contrib import admin

from apps.qa.models import Answer, Conversation


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin):
    list_display = [
        "question_short",
        "status",
        "declined",
        "adapter_version",
        "citation_source",
        "total_ms",
        "user",
        "created_at",
    ]
    list_filter = ["status", "declined", "adapter_version", "citation_source", "created_at"]
    search_fields = ["question", "retrieval_query", "text"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    # The session digest stays out of sight: it identifies a session, nobody needs to read it.
    exclude = ["session_digest"]
    readonly_fields = [f.name for f in Answer._meta.fields if f.name != "session_digest"]

    def has_add_permission(self, request: object) -> bool:
        return False

    @admin.display(description="Question")
    def question_short(self, obj: Answer) -> str:
        return obj.question[:100]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["title", "user", "created_at", "updated_at"]
    search_fields = ["title"]
    list_select_related = ["user"]
