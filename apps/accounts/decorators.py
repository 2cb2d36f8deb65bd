from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase

from apps.accounts.roles import is_sme

View = Callable[..., HttpResponseBase]


def sme_required(view: View) -> View:
    """Subject-matter experts (and superusers) only; being staff does not count.
    Anonymous users go to the login page, signed-in users without the role get 403
    rather than a login loop."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_sme(request.user):
            raise PermissionDenied("Only subject-matter experts may do this.")
        return view(request, *args, **kwargs)

    return wrapper
