"""Test data and helpers shared by the suite: real files cut from the demo corpus, users,
and real Celery worker processes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from collections.abc import Iterator

    from django.contrib.auth.models import User

    from apps.judging.models import Judgement

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
UFC = CORPUS / "UFC_3-410-01_2013_c9_HVAC_Criteria.pdf"
# UFC 3-410-01's PDF pages 24-26 (printed 13-15; 0-based here), 3-5.3.4 on the second.
UFC_FORKLIFT_PAGES = [23, 24, 25]
HUD = CORPUS / "HUD_NSPIRE_Standards_v2.1_HVAC.pdf"
ADA = SHARED / "corpus-extra" / "ada-2010.md"
EVAL = SHARED / "eval" / "sample-qa.jsonl"


def pdf_pages(source: Path, indexes: list[int], *, password: str | None = None) -> bytes:
    """A real PDF made of some pages (0-based) of ``source``."""
    import pypdf

    reader = pypdf.PdfReader(source)
    writer = pypdf.PdfWriter()
    for index in indexes:
        writer.add_page(reader.pages[index])
    if reader.metadata:
        writer.add_metadata({k: v for k, v in reader.metadata.items() if isinstance(v, str)})
    if password:
        writer.encrypt(password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def upload(name: str, data: bytes, **kwargs: object):  # -> UploadResult
    from apps.documents import services

    return services.document_upload(filename=name, chunks=[data], **kwargs)  # type: ignore[arg-type]


def ingest(name: str, data: bytes, **kwargs: object):  # -> Document
    from apps.documents import services

    result = upload(name, data, enqueue=False, **kwargs)
    return services.document_ingest(document_id=result.document.pk)


def judged(answer_id: int) -> Judgement:
    """``answer_judge`` of a finished answer: its judgement (only unfinished ones get None)."""
    from apps.judging.services import answer_judge

    judgement = answer_judge(answer_id=answer_id)
    assert judgement is not None, f"answer {answer_id} was not judged"
    return judgement


def streamed(response: object) -> Iterator[bytes]:
    """The body of a streaming response (a file, an export, server-sent events) from the
    test client, which the stubs type as a plain HttpResponse."""
    from collections.abc import Iterator

    from django.http import StreamingHttpResponse

    assert isinstance(response, StreamingHttpResponse), response
    content = response.streaming_content
    assert isinstance(content, Iterator)  # a sync response's
    return content


def make_user(
    username: str, *groups: str, staff: bool = False, permissions: tuple[str, ...] = ()
) -> User:
    """A user in ``groups`` with the model ``permissions`` given as "app.codename"."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    user = get_user_model().objects.create_user(
        username=username, password="pw-" + username, is_staff=staff
    )
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def staff_client(*permissions: str):  # -> django.test.Client
    """A client signed in as a staff user (not an SME) with only these permissions."""
    from django.test import Client

    client = Client()
    name = "staff-" + "-".join(p.split(".")[1] for p in permissions)
    client.force_login(make_user(name, staff=True, permissions=permissions))
    return client


def admin_action(client, changelist: str, action: str, ids: list[int]) -> str:
    """Runs an admin action from the changelist ``changelist`` (a URL name such as
    "admin:adapters_adapterversion_changelist") and returns the messages shown after."""
    from django.urls import reverse

    response = client.post(
        reverse(changelist), {"action": action, "_selected_action": ids}, follow=True
    )
    assert response.status_code == 200, response.status_code
    return " ".join(str(m) for m in response.context["messages"])


def admin_actions_offered(client, changelist: str) -> list[str]:
    from django.urls import reverse

    page = client.get(reverse(changelist))
    assert page.status_code == 200, page.status_code
    form = page.context["action_form"]  # None: no action at all
    return [] if form is None else [name for name, _ in form.fields["action"].choices]


def database_url(settings_dict: dict[str, object]) -> str:
    host = str(settings_dict.get("HOST") or "")
    host = quote(host, safe="") if host.startswith("/") else host
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    password = f":{quote(str(settings_dict['PASSWORD']))}" if settings_dict.get("PASSWORD") else ""
    return f"postgresql://{settings_dict.get('USER') or 'postgres'}{password}@{host}{port}/{settings_dict['NAME']}"


def start_worker(
    env: dict[str, str], *, queues: str, name: str, log: Path
) -> subprocess.Popen[bytes]:
    """A real ``celery worker`` process; returns once it answers a ping."""
    celery_bin = str(Path(sys.executable).parent / "celery")
    handle = log.open("wb")
    process = subprocess.Popen(
        [
            celery_bin,
            "-A",
            "portal",
            "worker",
            "-Q",
            queues,
            "-c",
            "1",
            "-n",
            f"{name}@%h",
            "--loglevel",
            "INFO",
        ],
        cwd=REPO,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    broker = env.get("CELERY_BROKER_URL") or env["REDIS_URL"].replace("unix://", "redis+socket://")
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{log.read_text()[-3000:]}")
            if _answers_ping(broker, f"{name}@{os.uname().nodename}"):
                return process
        raise RuntimeError(f"worker did not answer within 90 s:\n{log.read_text()[-3000:]}")
    except BaseException:
        stop(process)  # never left running for later tests to meet on the broker
        raise


def _answers_ping(broker: str, destination: str) -> bool:
    """One ping through a new client. A connection the broker dropped (a test restarted
    it) is retried with the next ping, not taken for an answer or a failure."""
    from celery import Celery
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    # Not the current app: shared tasks sent afterwards must still go to the portal's broker.
    probe = Celery(broker=broker, set_as_current=False)
    try:
        return bool(probe.control.ping(timeout=0.5, destination=[destination]))
    except (OperationalError, RedisConnectionError, ConnectionError):
        time.sleep(0.5)
        return False
    finally:
        probe.close()


def purge_queue(name: str) -> int:
    """Removes every message waiting on the portal's broker queue ``name``; returns how
    many. A fresh connection, not the app's pool: a pooled one may predate a test that
    restarted the broker."""
    from portal.celery import app

    with app.connection() as connection:
        connection.ensure_connection(max_retries=5)
        # kombu's types give a channel no queue_purge; Redis's virtual channel has one.
        return int(connection.default_channel.queue_purge(name) or 0)  # type: ignore[attr-defined]


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def wait_for(
    predicate, *, timeout: float, interval: float = 0.25, message: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def make_adapter(
    base_model: Path,
    folder: Path,
    version: str,
    *,
    seed: int = 0,
    scale: float = 0.5,
    gguf: bool = True,
) -> Path:
    """A real LoRA adapter for ``base_model`` with random weights (so it changes answers),
    written with its GGUF LoRA and manifest under a temporary name and renamed into place;
    ``gguf=False``: as adapters were before llama.cpp serving (peft files only)."""
    import tempfile

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ml import adapters

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    config = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_" in name:
                parameter.mul_(scale)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=folder))
    peft_model.save_pretrained(str(staging))
    if not gguf:
        adapters.write_manifest(
            staging, version=version, base_model=base_model.name, algorithm="random"
        )
        return adapters.publish(staging, folder / version)
    return adapters.finish(
        staging,
        adapters_dir=folder,
        version=version,
        base_model=base_model.name,
        base_config=model.config.to_dict(),
        algorithm="random",
    )


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_web(
    env: dict[str, str], *, log: Path, workers: int = 1, threads: int = 4
) -> tuple[subprocess.Popen[bytes], str]:
    """A real gunicorn (gthread, as the launcher runs it) on a free port; returns it and its
    base URL once /healthz answers."""
    import requests

    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "portal.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--timeout",
            "300",
        ],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=2).ok
        except requests.RequestException:
            return False

    try:
        wait_for(up, timeout=60, message="the web server")
    except BaseException:
        stop(server)
        raise
    return server, base


def web_login(base: str, username: str):  # -> requests.Session
    """A requests session signed in as ``username`` (password "pw-<username>", as
    make_user sets it), sending the CSRF token on every request."""
    import re

    import requests

    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=10)
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found is not None, "the login page has no CSRF token"
    token = found.group(1)
    session.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": f"pw-{username}", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=10,
    )
    csrf_cookie = session.cookies["csrftoken"]
    assert csrf_cookie is not None
    session.headers["X-CSRFToken"] = csrf_cookie
    session.headers["Referer"] = base
    return session
