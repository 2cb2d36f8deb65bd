"""The two groups the portal knows, and who counts as what."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

ENGINEERS = "engineers"
SMES = "smes"
GROUPS = (ENGINEERS, SMES)


def is_sme(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Subject-matter experts and staff may manage documents and review queues."""
    if not user.is_authenticated:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return user.groups.filter(name=SMES).exists()
