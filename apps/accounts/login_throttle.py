"""Login throttling: at most LOGIN_FAILURE_LIMIT failed sign-ins per user name and client
address within LOGIN_FAILURE_WINDOW_SECONDS, on the portal's login page and the admin's.

An attempt is recorded before the password is checked and counted together with the
attempts already recorded: of any number of simultaneous guesses, at most the limit get
their password checked, since the last one to commit its row sees all the others. A
successful sign-in forgets its key's attempts; a refused one checks no password.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from apps.accounts.models import LoginAttempt


@dataclass(frozen=True)
class Throttled:
    retry_at: datetime

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil((self.retry_at - timezone.now()).total_seconds() / 60))
        unit = "minute" if minutes == 1 else "minutes"
        return (
            f"Too many failed sign-ins for this user name from your address. "
            f"Try again in {minutes} {unit}."
        )


def _key(username: str, address: str | None) -> dict[str, str]:
    return {"username": username.strip().casefold()[:150], "address": (address or "")[:45]}


def login_attempt_begin(*, username: str, address: str | None) -> Throttled | None:
    """Records a sign-in attempt; returns Throttled (and forgets the attempt) when the key
    already has its fill of failures in the window, None when the password may be checked."""
    now = timezone.now()
    window_start = now - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    LoginAttempt.objects.filter(created_at__lt=window_start).delete()
    key = _key(username, address)
    attempt = LoginAttempt.objects.create(**key, created_at=now)
    recent = LoginAttempt.objects.filter(**key, created_at__gte=window_start)
    if recent.count() <= settings.LOGIN_FAILURE_LIMIT:
        return None
    attempt.delete()
    oldest = recent.aggregate(oldest=Min("created_at"))["oldest"] or now
    return Throttled(retry_at=oldest + timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS))


def login_attempts_forget(*, username: str, address: str | None) -> None:
    """After a successful sign-in: its key starts again from zero."""
    LoginAttempt.objects.filter(**_key(username, address)).delete()
