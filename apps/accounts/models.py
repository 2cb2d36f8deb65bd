from __future__ import annotations

from django.db import models


class LoginAttempt(models.Model):
    """A sign-in that has not succeeded (yet): the throttle counts these per user name and
    address. A successful sign-in removes its key's rows; old rows are pruned as new ones
    come. Kept in PostgreSQL, so every web process counts the same attempts."""

    username = models.CharField(max_length=150)  # as typed, case-folded
    address = models.CharField(max_length=45, blank=True)  # the client's IP address
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["username", "address", "created_at"])]

    def __str__(self) -> str:
        return f"{self.username} from {self.address or '?'} at {self.created_at:%Y-%m-%d %H:%M}"
