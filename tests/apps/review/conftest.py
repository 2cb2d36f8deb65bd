from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests import support


@pytest.fixture
def sme() -> User:
    return support.make_user("sam", "smes")  # an expert, not staff


@pytest.fixture
def sme_client(sme: User) -> Client:
    client = Client()
    client.force_login(sme)
    return client
