from __future__ import annotations

import pytest
from django.test import Client

from tests import support


@pytest.fixture
def sme() -> object:
    return support.make_user("sam", "smes")  # an expert, not staff


@pytest.fixture
def sme_client(sme: object) -> Client:
    client = Client()
    client.force_login(sme)
    return client
