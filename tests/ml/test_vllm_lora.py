"""Promotion into vLLM through its runtime LoRA API, against a small server on loopback
that speaks what vLLM does: /v1/models, streamed chat completions that need the adapter
loaded, and /v1/load_lora_adapter, /v1/unload_lora_adapter."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ml.adapters import AdapterRefused, publish, write_manifest
from ml.generator import GenerationResult, GenerationSettings
from ml.openai_generator import OpenAICompatibleGenerator

BASE_MODEL = "mistral-7b-instruct"
MESSAGES = [{"role": "user", "content": "How warm?"}]


@dataclass
class FakeVLLM:
    """What the server holds and what it was asked."""

    url: str = ""
    loaded: set[str] = field(default_factory=set)
    # (path, body, status) of every POST, in order
    received: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    runtime_lora: bool = True  # False: started without VLLM_ALLOW_RUNTIME_LORA_UPDATING=True
    stale_listing: bool = False  # /v1/models lags behind a load by another process
    unload_status: int | None = None  # answer unloads with this error
    mount: tuple[str, Path] | None = None  # the adapters folder as this host mounts it

    def requests_to(self, route: str) -> list[dict[str, Any]]:
        return [body for path, body, _ in self.received if path == f"/v1/{route}"]

    def sees(self, lora_path: str) -> Path | None:
        if self.mount is None:
            return Path(lora_path)
        prefix, local = self.mount
        if not lora_path.startswith(prefix + "/"):
            return None
        return local / lora_path[len(prefix) + 1 :]


def _error(status: int, message: str, kind: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": kind, "code": status}}


def _handler(state: FakeVLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            self.send_header(
                "Content-Type", "application/json" if isinstance(body, dict) else "text/plain"
            )
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            names = [BASE_MODEL] + ([] if state.stale_listing else sorted(state.loaded))
            self._reply(
                200, {"object": "list", "data": [{"id": n, "object": "model"} for n in names]}
            )

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.auth.append(self.headers.get("Authorization", ""))
            status, reply = self._route(body)
            # Recorded before the reply goes out, so the client never gets ahead of it.
            state.received.append((self.path, body, status))
            if self.path == "/v1/chat/completions" and status == 200:
                self._stream(body["model"])
            else:
                self._reply(status, reply)

        def _route(self, body: dict[str, Any]) -> tuple[int, Any]:
            if self.path == "/v1/chat/completions":
                model = body["model"]
                if model != BASE_MODEL and model not in state.loaded:
                    return _error(404, f"The model `{model}` does not exist.", "NotFoundError")
                return 200, None
            if not self.path.endswith("_lora_adapter") or not state.runtime_lora:
                return 404, {"detail": "Not Found"}  # FastAPI: no such route
            name = body["lora_name"]
            if self.path == "/v1/load_lora_adapter":
                if name in state.loaded:
                    return _error(
                        400,
                        f"The lora adapter '{name}' has already been loaded.",
                        "InvalidUserInput",
                    )
                folder = state.sees(body["lora_path"])
                if folder is None or not (folder / "adapter_config.json").is_file():
                    return _error(
                        404,
                        f"Loading lora {name} failed: No adapter found for {body['lora_path']}",
                        "NotFoundError",
                    )
                state.loaded.add(name)
                return 200, f"Success: LoRA adapter '{name}' added successfully."
            if state.unload_status:
                return _error(state.unload_status, "engine busy", "InternalServerError")
            if name not in state.loaded:
                return _error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
            state.loaded.discard(name)
            return 200, f"Success: LoRA adapter '{name}' removed successfully."

        def _stream(self, model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            events: list[dict[str, Any]] = [
                {"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
                for p in ["Heat to ", "55°F."]
            ]
            events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            events.append(
                {
                    "choices": [],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
                }
            )
            for event in events:
                chunk = {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    **event,
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

    return Handler


@pytest.fixture
def vllm() -> Iterator[FakeVLLM]:
    state = FakeVLLM()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield state
    httpd.shutdown()
    httpd.server_close()


def make_adapter(root: Path, version: str) -> tuple[Path, str]:
    """A published adapter folder with its manifest; returns (folder, checksum)."""
    temporary = root / f".{version}.tmp"
    temporary.mkdir(parents=True)
    (temporary / "adapter_config.json").write_text(
        json.dumps(
            {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "base_model_name_or_path": BASE_MODEL}
        )
    )
    (temporary / "adapter_model.safetensors").write_bytes(b"weights of " + version.encode())
    manifest = write_manifest(temporary, version=version, base_model=BASE_MODEL)
    return publish(temporary, root / version), manifest.checksum


def answer(generator: OpenAICompatibleGenerator) -> GenerationResult:
    result = list(generator.stream(MESSAGES, GenerationSettings()))[-1]
    assert isinstance(result, GenerationResult)
    return result


def test_promotion_loads_the_adapter_and_answers_come_from_it(vllm: FakeVLLM, tmp_path: Path):
    folder, checksum = make_adapter(tmp_path, "v1-a1b2")
    generator = OpenAICompatibleGenerator(vllm.url, model=BASE_MODEL, api_key="secret")
    assert answer(generator).model == BASE_MODEL

    generator.activate("v1-a1b2", folder, checksum)

    assert vllm.requests_to("load_lora_adapter") == [
        {"lora_name": "v1-a1b2", "lora_path": str(folder)}
    ]
    assert vllm.loaded == {"v1-a1b2"} and generator.served_adapter == "v1-a1b2"
    result = answer(generator)
    assert (result.model, result.adapter, result.text) == ("v1-a1b2", "v1-a1b2", "Heat to 55°F.")
    assert vllm.requests_to("chat/completions")[-1]["model"] == "v1-a1b2"
    assert set(vllm.auth) == {"Bearer secret"}

    generator.activate("v1-a1b2", folder, checksum)  # listed already: no second load
    assert len(vllm.requests_to("load_lora_adapter")) == 1


def test_another_process_promoting_the_same_version_still_serves_it(vllm: FakeVLLM, tmp_path: Path):
    folder, checksum = make_adapter(tmp_path, "v1-a1b2")
    first = OpenAICompatibleGenerator(vllm.url, model=BASE_MODEL)
    second = OpenAICompatibleGenerator(vllm.url, model=BASE_MODEL)
    first.activate("v1-a1b2", folder, checksum)
    vllm.stale_listing = True  # the second process listed the models before the first loaded

    second.activate("v1-a1b2", folder, checksum)

    assert [status for path, _, status in vllm.received if path.endswith("load_lora_adapter")] == [
        200,
        400,
    ]
    assert second.served_adapter == "v1-a1b2" and answer(second).model == "v1-a1b2"


def test_versions_beyond_the_kept_ones_are_unloaded(vllm: FakeVLLM, tmp_path: Path):
    generator = OpenAICompatibleGenerator(vllm.url, model=BASE_MODEL, keep_adapters=2)
    for version in ["v1", "v2"]:
        generator.activate(version, *make_adapter(tmp_path, version))
    assert vllm.loaded == {"v1", "v2"} and vllm.requests_to("unload_lora_adapter") == []

    generator.activate("v3", *make_adapter(tmp_path, "v3"))

    assert vllm.requests_to("unload_lora_adapter") == [{"lora_name": "v1"}]
    assert vllm.loaded == {"v2", "v3"}
    assert answer(generator).model == "v3"
    generator.activate("v2", tmp_path / "v2", None)  # rollback: still loaded, nothing to load
    assert vllm.loaded == {"v2", "v3"} and len(vllm.requests_to("load_lora_adapter")) == 3
    assert answer(generator).model == "v2"


def test_the_served_version_is_never_unloaded(vllm: FakeVLLM, tmp_path: Path):
    generator = OpenAICompatibleGenerator(vllm.url, model=BASE_MODEL, keep_adapters=0)
    generator.activate("v1", *make_adapter(tmp_path, "v1"))
    assert vllm.loaded == {"v1"} and answer(generator).model == "v1"
    generator.activate("v2", *make_adapter(tmp_path, "v2"))
    assert vllm.loaded == {"v2"} and answer(generator).model == "v2"


def test_a_tampered_adapter_is_refused_before_any_load(vllm: FakeVLLM, tmp_path: Path):
    generator = OpenAICompatibleGenerator(vllm.url, model=BASE_MODEL)
    generator.activate("v1", *make_adapter(tmp_path, "v1"))
    folder, checksum = make_adapter(tmp_path, "v2")
    (folder / "adapter_model.safetensors").write_bytes(b"other weights")

    with pytest.raises(AdapterRefused, match="does not match its manifest"):
        generator.activate("v2", folder, checksum)

    assert [body["lora_name"] for body in vllm.requests_to("load_lora_adapter")] == ["v1"]
    assert generator.served_adapter == "v1" and answer(generator).model == "v1"


def test_a_folder_holding_another_version_is_refused(vllm: FakeVLLM, tmp_path: Path):
    generator = OpenAICompatibleGenerator(vllm.url, model=BASE_MODEL)
    folder, checksum = make_adapter(tmp_path, "v9")
    with pytest.raises(AdapterRefused, match="holds adapter v9, not v2"):
        generator.activate("v2", folder, checksum)
    assert vllm.requests_to("load_lora_adapter") == [] and generator.served_adapter == "base"


def test_a_server_without_runtime_lora_updates_says_what_to_fix(vllm: FakeVLLM, tmp_path: Path):
    vllm.runtime_lora = False
    vllm.loaded = {"v0"}  # started with --lora-modules v0=...: listed, so no load needed
    generator = OpenAICompatibleGenerator(vllm.url, model=BASE_MODEL)
    generator.activate("v0", *make_adapter(tmp_path, "v0"))

    with pytest.raises(AdapterRefused, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING=True") as refused:
        generator.activate("v1", *make_adapter(tmp_path, "v1"))

    assert "--enable-lora" in str(refused.value)
    assert len(vllm.requests_to("load_lora_adapter")) == 1 and "v1" not in vllm.loaded
    assert generator.served_adapter == "v0" and answer(generator).model == "v0"


def test_an_unreachable_server_refuses_the_adapter(tmp_path: Path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    generator = OpenAICompatibleGenerator(
        f"http://127.0.0.1:{port}/v1", model=BASE_MODEL, timeout=5
    )
    with pytest.raises(AdapterRefused, match="cannot list the server's models"):
        generator.activate("v1", *make_adapter(tmp_path, "v1"))
    assert generator.served_adapter == "base"


def test_a_failed_unload_is_logged_and_retried_later(
    vllm: FakeVLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    vllm.unload_status = 500
    generator = OpenAICompatibleGenerator(vllm.url, model=BASE_MODEL, keep_adapters=1)
    generator.activate("v1", *make_adapter(tmp_path, "v1"))
    with caplog.at_level(logging.WARNING, logger="ml.openai_generator"):
        generator.activate("v2", *make_adapter(tmp_path, "v2"))

    assert generator.served_adapter == "v2" and answer(generator).model == "v2"
    assert vllm.requests_to("unload_lora_adapter") == [{"lora_name": "v1"}]
    assert "could not unload adapter v1" in caplog.text and "500" in caplog.text

    vllm.unload_status = None
    generator.activate("v3", *make_adapter(tmp_path, "v3"))
    assert vllm.loaded == {"v3"}


def test_an_adapter_another_process_unloaded_is_fine(vllm: FakeVLLM, tmp_path: Path):
    generator = OpenAICompatibleGenerator(vllm.url, model=BASE_MODEL, keep_adapters=1)
    generator.activate("v1", *make_adapter(tmp_path, "v1"))
    vllm.loaded.discard("v1")  # another web process unloaded it first
    generator.activate("v2", *make_adapter(tmp_path, "v2"))
    assert [
        status for path, _, status in vllm.received if path.endswith("unload_lora_adapter")
    ] == [404]
    generator.activate("v3", *make_adapter(tmp_path, "v3"))  # v1 is forgotten, not retried
    assert vllm.requests_to("unload_lora_adapter") == [{"lora_name": "v1"}, {"lora_name": "v2"}]


def test_the_adapter_root_maps_paths_to_where_the_server_mounts_them(
    vllm: FakeVLLM, tmp_path: Path
):
    local_root = tmp_path / "var" / "adapters"
    vllm.mount = ("/srv/portal-adapters", local_root)
    folder, checksum = make_adapter(local_root, "v1")
    unmapped = OpenAICompatibleGenerator(vllm.url, model=BASE_MODEL)
    with pytest.raises(AdapterRefused, match="GENERATOR_ADAPTER_ROOT") as refused:
        unmapped.activate("v1", folder, checksum)
    assert str(folder) in str(refused.value) and unmapped.served_adapter == "base"

    generator = OpenAICompatibleGenerator(
        vllm.url,
        model=BASE_MODEL,
        adapter_root="/srv/portal-adapters",
        local_adapter_root=local_root,
    )
    generator.activate("v1", folder, checksum)

    assert vllm.requests_to("load_lora_adapter")[-1] == {
        "lora_name": "v1",
        "lora_path": "/srv/portal-adapters/v1",
    }
    assert answer(generator).model == "v1"
