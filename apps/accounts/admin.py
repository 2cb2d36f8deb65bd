from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from apps.accounts.roles import is_sme


class SmeAdmin(admin.ModelAdmin):
    """An admin page for subject-matter experts, whatever their model permissions: the
    review queues, reference sets and judgements are theirs to work on. Staff without the
    SME role do not see it. Nothing is added or deleted unless a subclass says so."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_sme(request.user)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return is_sme(request.user)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return is_sme(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
