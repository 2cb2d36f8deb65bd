"""/healthz answers anyone, so when the database is down it says so and nothing more."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import connection
from django.test import Client

from tests import support


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_url")
def test_healthz_says_ok_without_a_login():
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = json.loads(response.content)
    assert (body["ok"], body["database"], body["broker"]) == (True, "ok", "ok")
    assert set(body["workers"]) == {"default", "ingest", "judge", "nightly", "gpu"}


@pytest.mark.django_db(transaction=True)
def test_healthz_says_which_queues_have_a_worker(celery_worker):
    def workers() -> dict[str, bool]:
        return Client().get("/healthz").json()["workers"]

    support.wait_for(lambda: workers()["ingest"], timeout=30, message="the worker's heartbeat")
    assert workers() == {
        "default": True,
        "ingest": True,
        "judge": True,
        "nightly": True,
        "gpu": False,  # no GPU worker in the suite
    }


@pytest.mark.django_db
def test_a_broker_that_does_not_answer_gives_503_without_its_error_text(settings, tmp_path, caplog):
    settings.REDIS_URL = f"unix://{tmp_path}/no-redis-here.sock"
    with caplog.at_level(logging.ERROR, logger="apps.core.views"):
        response = Client().get("/healthz")
    assert response.status_code == 503
    body = json.loads(response.content)
    assert (body["ok"], body["database"], body["broker"]) == (False, "ok", "unavailable")
    assert body["error"] == "broker unavailable" and str(tmp_path) not in response.content.decode()
    assert str(tmp_path) in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_database_that_does_not_answer_gives_503_without_its_error_text(tmp_path, caplog):
    # A real connection attempt to a socket folder where no PostgreSQL listens.
    connection.close()
    saved = dict(connection.settings_dict)
    connection.settings_dict.update(HOST=str(tmp_path), PORT="5999", USER="secret-db-user")
    try:
        with caplog.at_level(logging.ERROR, logger="apps.core.views"):
            response = Client().get("/healthz")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    body = json.loads(response.content)
    assert (body["ok"], body["database"], body["error"]) == (
        False,
        "unavailable",
        "database unavailable",
    )
    body = response.content.decode()
    assert str(tmp_path) not in body and "secret-db-user" not in body and "5999" not in body
    # The detail is in the server log, for whoever runs the portal.
    assert str(tmp_path) in caplog.text or "5999" in caplog.text


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "accept", "kind"),
    [("/documents/search/?q=forklift", "text/html", "text/html"), ("/ask/api/answers", "", "json")],
)
def test_a_page_while_the_database_does_not_answer_is_a_503_to_retry(
    tmp_path, path: str, accept: str, kind: str
):
    client = Client(raise_request_exception=False)
    client.force_login(support.make_user("eve", "engineers"))
    connection.close()
    saved = dict(connection.settings_dict)
    connection.settings_dict.update(HOST=str(tmp_path), PORT="5999", USER="secret-db-user")
    try:
        response = client.get(path, headers={"accept": accept})
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert kind in response["Content-Type"]
    body = response.content.decode()
    assert "secret-db-user" not in body and str(tmp_path) not in body
    assert (
        ("briefly unavailable" in body)
        if kind == "text/html"
        else response.json()
        == {
            "error": "database unavailable",
            "retry_after": 30,
        }
    )
