"""The "external server" configuration: DATABASE_URL, REDIS_URL and CELERY_BROKER_URL
pointing at the machine's own PostgreSQL 15, Redis and RabbitMQ instead of embedded ones."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from celery import Celery

from apps.documents.models import Document
from tests import support

EXTERNAL_PG = os.environ.get("TEST_EXTERNAL_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
EXTERNAL_REDIS = os.environ.get("TEST_EXTERNAL_REDIS", "redis://127.0.0.1:6379/15")
EXTERNAL_AMQP = os.environ.get("TEST_EXTERNAL_AMQP", "amqp://guest:guest@127.0.0.1:5672//")


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def postgres_without_pgvector():
    psycopg = pytest.importorskip("psycopg")
    if not _listening(5432):
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    name = f"plumbline_ext_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(EXTERNAL_PG, autocommit=True, connect_timeout=5) as admin:
        if admin.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone():
            pytest.skip("this PostgreSQL has pgvector; the test needs one without")
        admin.execute(f'CREATE DATABASE "{name}"')
    yield EXTERNAL_PG.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(EXTERNAL_PG, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrate_explains_a_missing_pgvector(postgres_without_pgvector: str, tmp_path: Path):
    env = {**os.environ, "DATABASE_URL": postgres_without_pgvector, "PORTAL_VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=support.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "has no pgvector extension" in result.stderr
    assert "unset DATABASE_URL to use the embedded PostgreSQL" in result.stderr


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("variable", "url", "port"),
    [("REDIS_URL", EXTERNAL_REDIS, 6379), ("CELERY_BROKER_URL", EXTERNAL_AMQP, 5672)],
    ids=["redis", "rabbitmq"],
)
def test_a_worker_on_an_external_broker_ingests(
    worker_env: dict[str, str], tmp_path: Path, small_pdf: bytes, variable: str, url: str, port: int
):
    if not _listening(port):
        pytest.skip(f"nothing listens on 127.0.0.1:{port}")
    env = {**worker_env, variable: url}
    queue = f"ingest-{uuid.uuid4().hex[:6]}"  # private queue: no other worker takes the task
    worker = support.start_worker(env, queues=queue, name=f"ext{port}", log=tmp_path / "worker.log")
    try:
        document = support.upload("criteria.pdf", small_pdf, enqueue=False).document
        # Not the current app, or the suite's later shared tasks would go to this broker.
        broker = Celery(broker=url, set_as_current=False)
        broker.send_task("documents.ingest", args=[document.pk], queue=queue)
        broker.close()
        support.wait_for(
            lambda: Document.objects.get(pk=document.pk).status == "ready",
            timeout=120,
            message="ingest",
        )
    finally:
        support.stop(worker)
        if variable == "REDIS_URL":
            import redis

            redis.Redis.from_url(url).flushdb()
