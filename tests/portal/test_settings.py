"""Settings read in a fresh interpreter, as a deployment starts: the TLS switches, and
the clear start-up message for every value that cannot be used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal.env import ImproperEnv, env_float
from tests.support import REPO

SHOW = (
    "import json, portal.settings as s; print(json.dumps({n: getattr(s, n) for n in ["
    "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS',"
    "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_SSL_REDIRECT', 'SECURE_PROXY_SSL_HEADER',"
    "'ANSWER_MIN_SIMILARITY', 'PROMOTION_MARGIN']}))"
)


def _settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PORTAL_"))}
    clean.update(
        PORTAL_VAR_DIR=str(tmp_path),
        # Parsed, never connected to: no embedded PostgreSQL starts for these.
        DATABASE_URL="postgresql://nobody@localhost:1/none",
        DJANGO_SECRET_KEY="test",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-c", SHOW], cwd=REPO, env=clean, capture_output=True, text=True
    )


def _values(tmp_path: Path, **env: str) -> dict[str, object]:
    result = _settings(tmp_path, **env)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_plain_http_by_default_and_tls_in_one_switch(tmp_path: Path):
    plain = _values(tmp_path)
    assert plain["SESSION_COOKIE_SECURE"] is plain["CSRF_COOKIE_SECURE"] is False
    assert plain["SECURE_HSTS_SECONDS"] == 0 and plain["SECURE_PROXY_SSL_HEADER"] is None

    tls = _values(tmp_path, PORTAL_TLS="1", DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert tls["SESSION_COOKIE_SECURE"] is tls["CSRF_COOKIE_SECURE"] is True
    assert tls["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    assert tls["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert tls["SECURE_SSL_REDIRECT"] is False

    tuned = _values(
        tmp_path,
        PORTAL_TLS="true",
        DJANGO_SECURE_HSTS_SECONDS="300",
        DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="yes",
        DJANGO_CSRF_COOKIE_SECURE="0",
        DJANGO_SECURE_SSL_REDIRECT="1",
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Ssl=on",
    )
    assert (tuned["SECURE_HSTS_SECONDS"], tuned["SECURE_HSTS_INCLUDE_SUBDOMAINS"]) == (300, True)
    assert tuned["CSRF_COOKIE_SECURE"] is False and tuned["SESSION_COOKIE_SECURE"] is True
    assert tuned["SECURE_SSL_REDIRECT"] is True
    assert tuned["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_SSL", "on"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ANSWER_MIN_SIMILARITY", "0,35", "ANSWER_MIN_SIMILARITY='0,35' is not a number"),
        ("ANSWER_MIN_SIMILARITY", "2", "ANSWER_MIN_SIMILARITY=2.0 is above the maximum 1"),
        ("PROMOTION_MARGIN", "nan", "PROMOTION_MARGIN='nan' is not a finite number"),
        ("PORTAL_TLS", "sure", "PORTAL_TLS='sure' is not a boolean"),
        ("GENERATOR_REQUANTIZE", "q3_k", "GENERATOR_REQUANTIZE='q3_k': use q8_0, q4_0 or off"),
        ("DJANGO_SECURE_HSTS_SECONDS", "-1", "DJANGO_SECURE_HSTS_SECONDS=-1 is below"),
        ("DJANGO_SECURE_PROXY_SSL_HEADER", "X Forwarded: https", "give a header name"),
        ("LONG_TASK_TIME_LIMIT", "50000", "LONG_TASK_TIME_LIMIT must be above"),
        ("DOCUMENT_INGEST_TIME_LIMIT", "43200", "DOCUMENT_INGEST_TIME_LIMIT must be below"),
    ],
)
def test_a_bad_value_stops_start_up_with_a_clear_message(
    tmp_path: Path, name: str, value: str, message: str
):
    result = _settings(tmp_path, **{name: value})
    assert result.returncode != 0
    # The last line, the one a person starting the portal reads, names the variable.
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"portal.env.ImproperEnv: {name}") and message in last, last


def test_env_float(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("X_FLOAT", "0.5")
    assert env_float("X_FLOAT", 1.0, minimum=0, maximum=1) == 0.5
    monkeypatch.setenv("X_FLOAT", "")
    assert env_float("X_FLOAT", 1.0) == 1.0
    monkeypatch.setenv("X_FLOAT", "-0.1")
    with pytest.raises(ImproperEnv, match="below the minimum 0"):
        env_float("X_FLOAT", 1.0, minimum=0)


def test_every_task_has_a_time_limit_its_broker_message_outlives():
    """A task without a limit can hold its worker for ever; one whose hard limit reaches the
    broker's visibility timeout would be handed to a second worker while it still runs."""
    from django.conf import settings

    from portal.celery import app

    app.loader.import_default_modules()
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert {"documents.ingest", "training.train", "answers.fail_stale"} <= set(ours)

    def soft_of(task: object) -> int | None:
        return task.soft_time_limit or app.conf.task_soft_time_limit  # type: ignore[attr-defined]

    for name, task in ours.items():
        soft = soft_of(task)
        hard = task.time_limit or app.conf.task_time_limit
        assert soft and hard and soft < hard < visibility, (name, soft, hard)
    assert soft_of(ours["answers.fail_stale"]) == settings.TASK_TIME_LIMIT == 600  # default
    assert ours["training.train"].time_limit > 8 * 3600
