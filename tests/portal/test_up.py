"""``manage.py up`` from nothing: embedded PostgreSQL and Redis, web, workers and beat;
a demo user logs in, the demo corpus gets ingested by the worker, search cites it, and an
answer comes straight from the shipped GGUF (no model preparation step)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tests import support

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_line(
    log: Path, pattern: str, process: subprocess.Popen[bytes], timeout: float
) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match:
            return match
        if process.poll() is not None:
            break
        time.sleep(0.3)
    raise AssertionError(f"no line matching {pattern!r}; output:\n{log.read_text()[-4000:]}")


def _demo_corpus(folder: Path) -> Path:
    """The demo corpus's two PDFs cut to a few pages, so the first start ingests in seconds:
    UFC 3-410-01's printed pages 13-15 (PDF pages 24-26, paragraph 3-5.3.4 on the second)
    and NSPIRE's first two. tests/apps/documents/test_search.py ingests both documents
    whole (without OCR); OCR has its own tests in tests/apps/documents/."""
    folder.mkdir()
    for source, pages in ((support.UFC, support.UFC_FORKLIFT_PAGES), (support.HUD, [0, 1])):
        (folder / source.name).write_bytes(support.pdf_pages(source, pages))
    return folder


def test_up_serves_the_demo_corpus_and_stops_on_ctrl_c(tmp_path: Path):
    var_dir, log, port = tmp_path / "var", tmp_path / "up.log", _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
    }
    env.update(
        PORTAL_VAR_DIR=str(var_dir),
        PORTAL_PORT=str(port),
        PORTAL_DEMO_CORPUS=str(_demo_corpus(tmp_path / "corpus")),
        # The bootstrap's SFT takes half an hour on 2 cores: tests/workers cover it.
        LOOP_BOOTSTRAP="false",
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "up"],
            cwd=support.REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        login = _wait_for_line(log, r"log in as: (\S+) / (\S+)", process, timeout=120)
        assert f"starting at {base}/" in log.read_text()
        support.wait_for(lambda: _healthy(base), timeout=60, message="the web server")

        session = requests.Session()
        # Like a browser, retry an idempotent GET whose kept-alive connection was closed.
        retry = Retry(total=3, connect=3, read=3, backoff_factor=0.2, allowed_methods={"GET"})
        session.mount("http://", HTTPAdapter(max_retries=retry))
        form = session.get(f"{base}/accounts/login/", timeout=10)
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert found is not None, "the login page has no CSRF token"
        token = found.group(1)
        response = session.post(
            f"{base}/accounts/login/",
            data={
                "username": login.group(1),
                "password": login.group(2),
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": f"{base}/accounts/login/"},
            timeout=10,
        )
        assert response.url.endswith("/ask/"), "login failed"

        def corpus_ready() -> bool:
            statuses = re.findall(
                r'class="status (\w+)"', session.get(f"{base}/documents/", timeout=10).text
            )
            assert "failed" not in statuses
            return statuses == ["ready", "ready"]

        support.wait_for(
            corpus_ready, timeout=300, interval=2, message="the demo corpus to be ingested"
        )
        page = session.get(
            f"{base}/documents/search/",
            params={"q": "minimum temperature for warehouse forklift areas"},
            timeout=60,
        )
        first = re.search(r'class="cite" href="([^"]+)"[^>]*>([^<]+)</a>', page.text)
        assert first is not None
        # Page 2 of the cut file is UFC 3-410-01's page 25, where 3-5.3.4 states 55°F.
        assert first.group(1).endswith("#page=2") and first.group(2).startswith("UFC 3-410-01")
        pdf = session.get(base + first.group(1).split("#")[0], timeout=10)
        assert pdf.headers["Content-Type"] == "application/pdf" and pdf.content[:5] == b"%PDF-"

        # Answering needs no preparation: the web server answers from the shipped GGUF.
        csrf = session.cookies["csrftoken"]
        assert csrf is not None
        answer = session.post(
            f"{base}/ask/api/answers",
            json={"question": "What is the minimum temperature for warehouse forklift areas?"},
            headers={"X-CSRFToken": csrf, "Referer": base},
            timeout=120,
        ).json()
        assert answer["status"] == "done" and answer["answer"], answer
        assert answer["adapter"] == "base" and answer["timings"]["total_ms"] < 30000, answer
        # No float32 checkpoint was made: only the Q8_0 copy of the shipped GGUF.
        assert [p.name for p in (var_dir / "models").iterdir()] == [
            "SmolLM2-135M-Instruct.Q8_0.gguf"
        ]
    except BaseException:
        print(log.read_text(errors="replace")[-8000:])  # shown by pytest with the failure
        raise
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        code = process.wait(60)
    assert code == 0, log.read_text()[-3000:]
    leftovers = subprocess.run(
        ["pgrep", "-f", str(var_dir)], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == [], f"processes still running: {leftovers}"
    assert not (var_dir / "pg" / "postmaster.pid").exists()


def _healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).json().get("ok") is True
    except requests.RequestException:
        return False
