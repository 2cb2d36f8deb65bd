"""Sign-ins are throttled per user name and client address, on the portal's login page
and the admin's: five failures within fifteen minutes, then a clear refusal that checks
no password, until the oldest failure leaves the window."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from django.db.models import F
from django.test import Client

from apps.accounts.models import LoginAttempt
from tests import support

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

pytestmark = pytest.mark.django_db

PAGES = ["/accounts/login/", "/admin/login/"]


@pytest.fixture(autouse=True)
def _fast_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _sign_in(
    page: str, username: str, password: str, address: str = "10.0.0.1"
) -> _MonkeyPatchedWSGIResponse:
    return Client(REMOTE_ADDR=address).post(page, {"username": username, "password": password})


@pytest.mark.parametrize("page", PAGES)
def test_five_failures_then_a_clear_refusal_even_for_the_right_password(page: str):
    support.make_user("eve", staff=True)  # staff, so that the admin's form lets her in
    for _ in range(5):
        response = _sign_in(page, "eve", "guess")
        assert response.status_code == 200 and "correct" in response.content.decode()
    refused = _sign_in(page, "Eve ", "pw-eve")  # case and spaces do not make a new key
    assert refused.status_code == 200
    page_text = refused.content.decode()
    assert "Too many failed sign-ins" in page_text and "Try again in 15 minutes" in page_text
    assert "_auth_user_id" not in refused.wsgi_request.session

    # Another address is another key; a sign-in there works and forgets only its own.
    assert _sign_in(page, "eve", "pw-eve", address="10.0.0.2").status_code == 302
    assert _sign_in(page, "eve", "pw-eve").status_code == 200

    # Once the oldest failure is older than the window, the right password works again,
    # and the key starts from zero.
    LoginAttempt.objects.update(created_at=F("created_at") - timedelta(minutes=16))
    assert _sign_in(page, "eve", "pw-eve").status_code == 302
    assert not LoginAttempt.objects.filter(address="10.0.0.1").exists()


def test_a_successful_sign_in_resets_the_count():
    support.make_user("eve")
    for _ in range(4):
        _sign_in(PAGES[0], "eve", "guess")
    assert _sign_in(PAGES[0], "eve", "pw-eve").status_code == 302
    for _ in range(5):
        assert "Too many" not in _sign_in(PAGES[0], "eve", "guess").content.decode()
    assert "Too many" in _sign_in(PAGES[0], "eve", "guess").content.decode()


def test_the_limit_and_window_come_from_the_settings(settings):
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_FAILURE_WINDOW_SECONDS = 1, 60
    support.make_user("eve")
    _sign_in(PAGES[0], "eve", "guess")
    assert "Try again in 1 minute." in _sign_in(PAGES[0], "eve", "pw-eve").content.decode()
