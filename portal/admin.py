from __future__ import annotations

from django.contrib.admin import AdminSite
from django.http import HttpRequest

from apps.accounts.forms import AdminLoginForm
from apps.accounts.roles import may_enter_admin


class PlumblineAdminSite(AdminSite):
    """The admin is the experts' workbench: SMEs get in without being staff and see the
    pages made for them (the review queues, reference sets); staff get in too, but see and
    change only what their model permissions allow (being staff is not being an SME)."""

    site_header = "Plumbline administration"
    site_title = "Plumbline admin"
    index_title = "Documents, review queues and training"
    login_form = AdminLoginForm  # throttled like the portal's login

    def has_permission(self, request: HttpRequest) -> bool:
        return may_enter_admin(request.user)
