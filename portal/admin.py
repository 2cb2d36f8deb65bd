from __future__ import annotations

from django.contrib.admin import AdminSite
from django.http import HttpRequest

from apps.accounts.roles import is_sme


class PlumblineAdminSite(AdminSite):
    """The admin is the experts' workbench: SMEs get in without being staff, and each
    ModelAdmin decides what they may see (the review queues), staff keep Django's rules."""

    site_header = "Plumbline administration"
    site_title = "Plumbline admin"
    index_title = "Documents, review queues and training"

    def has_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and is_sme(request.user))
