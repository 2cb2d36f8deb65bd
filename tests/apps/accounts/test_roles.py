"""Who counts as an SME: members of the smes group and superusers (the demo account is
both), never a user just for being staff."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from apps.accounts.roles import is_sme
from apps.accounts.services import demo_user_ensure
from tests import support

pytestmark = pytest.mark.django_db

SME_PAGES = [
    reverse("review:export", args=["feedback", "csv"]),
    reverse("review:export", args=["references", "jsonl"]),
    reverse("review:analytics"),
    reverse("documents:upload"),
    reverse("training:index"),
    reverse("admin:review_betteranswer_changelist"),
    reverse("admin:review_judgementtovalidate_changelist"),
    reverse("admin:references_reference_changelist"),
]


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_staff_without_the_sme_role_get_403_on_sme_pages():
    staff = support.make_user("ada", staff=True, permissions=("feedback.view_feedback",))
    assert not is_sme(staff)
    client = _client(staff)
    for url in SME_PAGES:
        assert client.get(url).status_code == 403, url
    # Staff still reach the admin, for the models their permissions cover.
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:feedback_feedback_changelist")).status_code == 200
    # The upload form refuses a post as well as the page.
    assert client.post(reverse("documents:upload"), {}).status_code == 403


@pytest.mark.parametrize("kind", ["sme", "staff sme", "superuser", "demo"])
def test_smes_superusers_and_the_demo_account_reach_sme_pages(kind: str, tmp_path: Path):
    if kind == "demo":
        demo_user_ensure(credentials_file=tmp_path / "demo-password.txt")
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.get(username="demo")
    elif kind == "superuser":
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_superuser("root", "root@example.invalid", "pw")
    else:
        user = support.make_user("sam", "smes", staff=kind == "staff sme")
    assert is_sme(user)
    client = _client(user)
    for url in SME_PAGES:
        assert client.get(url).status_code == 200, url


def test_an_inactive_sme_is_not_one():
    user = support.make_user("old", "smes")
    user.is_active = False
    user.save()
    assert not is_sme(user)
