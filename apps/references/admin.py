from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from apps.accounts.admin import SmeAdmin
from apps.accounts.roles import is_sme
from apps.references.models import Reference, ReferenceSet


class CuratedAdmin(SmeAdmin):
    """Reference sets are the experts' to curate; only superusers delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_sme(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return bool(request.user.is_superuser)


@admin.register(ReferenceSet)
class ReferenceSetAdmin(CuratedAdmin):
    list_display = ["name", "validated", "pending", "description", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReferenceSet]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_validated=Count("references", filter=Q(references__status="validated")),
                n_pending=Count("references", filter=Q(references__status="pending")),
            )
        )

    @admin.display(description="Validated", ordering="n_validated")
    def validated(self, obj: ReferenceSet) -> int:
        return obj.n_validated  # type: ignore[attr-defined]

    @admin.display(description="Awaiting review", ordering="n_pending")
    def pending(self, obj: ReferenceSet) -> int:
        return obj.n_pending  # type: ignore[attr-defined]


@admin.register(Reference)
class ReferenceAdmin(CuratedAdmin):
    list_display = ["question", "reference_set", "source", "status", "document_name", "page"]
    list_filter = ["reference_set", "source", "status", "answerable", "kind", "document_name"]
    search_fields = ["question", "answer", "quote", "external_id"]
    date_hierarchy = "created_at"
    list_select_related = ["reference_set"]
    readonly_fields = ["source", "feedback", "chunk", "generated_by", "created_by", "created_at"]
    exclude = ["question_embedding"]
    raw_id_fields = ["document"]
