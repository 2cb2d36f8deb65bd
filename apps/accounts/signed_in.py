"""Types for requests whose user is signed in: every view behind LoginRequiredMiddleware
(all but those marked @login_not_required) and every admin page."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.models import User
from django.http import HttpRequest


class AuthenticatedHttpRequest(HttpRequest):
    """A view's request annotation, for the type checker only: Django passes a plain
    HttpRequest, whose ``user`` the login requirement has made a signed-in User."""

    user: User


def signed_in_user(request: HttpRequest) -> User:
    """``request.user`` of an admin page (the admin site lets in only signed-in staff and
    SMEs), whose method signatures Django fixes as taking a plain HttpRequest."""
    return cast("User", request.user)
