from __future__ import annotations

from django.http import HttpRequest

from apps.accounts.roles import is_sme


def roles(request: HttpRequest) -> dict[str, bool]:
    user = getattr(request, "user", None)
    return {"user_is_sme": bool(user is not None and is_sme(user))}
