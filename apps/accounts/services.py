from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from apps.accounts.roles import ENGINEERS, SMES
from portal.private_files import private_file_write

DEMO_USERNAME = "demo"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str | None  # only when the account was just created
    created: bool


@transaction.atomic
def demo_user_ensure(*, credentials_file: Path) -> DemoLogin:
    """Creates the demo account once (an admin who is also an engineer and an SME).

    Its random password is returned and kept in ``credentials_file`` (readable by its
    owner only) on that first start only: later start-ups get no password to print, and
    an existing account is never changed.
    """
    user_model = get_user_model()
    if user_model.objects.filter(username=DEMO_USERNAME).exists():
        return DemoLogin(DEMO_USERNAME, None, created=False)
    password = secrets.token_urlsafe(9)
    user = user_model.objects.create_superuser(
        username=DEMO_USERNAME, email="demo@example.invalid", password=password
    )
    user.groups.add(*Group.objects.filter(name__in=[ENGINEERS, SMES]))
    private_file_write(credentials_file, password + "\n")
    return DemoLogin(DEMO_USERNAME, password, created=True)


def user_create(*, username: str, password: str, groups: tuple[str, ...] = (ENGINEERS,)) -> object:
    user = get_user_model().objects.create_user(username=username, password=password)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user
