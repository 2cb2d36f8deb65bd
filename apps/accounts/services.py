from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from apps.accounts.roles import ENGINEERS, SMES

DEMO_USERNAME = "demo"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    created: bool


@transaction.atomic
def demo_user_ensure(*, credentials_file: Path) -> DemoLogin:
    """Creates the demo account once (an admin who is also an engineer and an SME).

    The password is random and kept in ``credentials_file`` so that later start-ups can
    print it again; an existing account is never changed.
    """
    user_model = get_user_model()
    user = user_model.objects.filter(username=DEMO_USERNAME).first()
    if user is not None:
        password = (
            credentials_file.read_text().strip() if credentials_file.exists() else "(unchanged)"
        )
        return DemoLogin(DEMO_USERNAME, password, created=False)
    password = secrets.token_urlsafe(9)
    user = user_model.objects.create_superuser(
        username=DEMO_USERNAME, email="demo@example.invalid", password=password
    )
    user.groups.add(*Group.objects.filter(name__in=[ENGINEERS, SMES]))
    credentials_file.write_text(password + "\n")
    credentials_file.chmod(0o600)
    return DemoLogin(DEMO_USERNAME, password, created=True)


def user_create(*, username: str, password: str, groups: tuple[str, ...] = (ENGINEERS,)) -> object:
    user = get_user_model().objects.create_user(username=username, password=password)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user
