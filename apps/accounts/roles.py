"""The two groups the portal knows, and who counts as what.

Roles are group memberships, never ``is_staff``: staff status only lets a user into the
admin, where Django's model permissions decide what they see and change."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

ENGINEERS = "engineers"
SMES = "smes"
GROUPS = (ENGINEERS, SMES)


def is_sme(user: User | AnonymousUser) -> bool:
    """Subject-matter experts (members of the ``smes`` group) and superusers may manage
    documents, the review queues, exports and analytics."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=SMES).exists()


def may_enter_admin(user: User | AnonymousUser) -> bool:
    """Staff (with whatever model permissions they were given) and SMEs (for the review
    queues and reference sets) get into the admin site."""
    return bool(user.is_authenticated and user.is_active and (user.is_staff or is_sme(user)))
