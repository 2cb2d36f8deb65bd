from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from apps.accounts.login_throttle import login_attempt_begin, login_attempts_forget


class ThrottledLoginMixin:
    """Sign-in forms that refuse, with a clear message, a user name that had too many
    failed attempts from this address (apps.accounts.login_throttle)."""

    request: Any
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if not username or not self.cleaned_data.get("password"):
            return super().clean()  # type: ignore[misc]  # the fields' own errors
        address = self.request.META.get("REMOTE_ADDR") if self.request else None
        throttled = login_attempt_begin(username=username, address=address)
        if throttled is not None:
            raise forms.ValidationError(throttled.message, code="throttled")
        cleaned = super().clean()  # type: ignore[misc]  # a wrong password stays counted
        login_attempts_forget(username=username, address=address)
        return cleaned


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
