"""The OpenAI-compatible backend against a small chat-completions server on loopback
(what vLLM with --enable-lora speaks): streaming, usage, adapters as model names, errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ml.adapters import AdapterRefused, write_manifest
from ml.generator import GenerationResult, GenerationSettings, GeneratorUnavailable
from ml.openai_generator import OpenAICompatibleGenerator

MODELS = ["mistral-7b-instruct", "adapter-7"]


class _Server(BaseHTTPRequestHandler):
    requests: list[dict] = []
    fail_with: int | None = None

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        body = json.dumps(
            {"object": "list", "data": [{"id": m, "object": "model"} for m in MODELS]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(payload)
        fail_with = type(self).fail_with
        if fail_with:
            self.send_response(fail_with)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "overloaded"}}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in ["Heat to ", "55°F ", "[1]."]:
            chunk = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": payload["model"],
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        final = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": payload["model"],
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        usage = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": payload["model"],
            "choices": [],
            "usage": {"prompt_tokens": 120, "completion_tokens": 6, "total_tokens": 126},
        }
        self.wfile.write(
            f"data: {json.dumps(final)}\n\ndata: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode()
        )


@pytest.fixture
def server() -> Iterator[str]:
    _Server.requests, _Server.fail_with = [], None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


MESSAGES = [{"role": "user", "content": "How warm?"}]


def test_streams_pieces_and_reports_usage(server: str):
    generator = OpenAICompatibleGenerator(server, model="mistral-7b-instruct")
    events = list(generator.stream(MESSAGES, GenerationSettings(max_new_tokens=50)))
    result = events[-1]
    assert events[:-1] == ["Heat to ", "55°F ", "[1]."]
    assert isinstance(result, GenerationResult)
    assert (result.text, result.adapter, result.model) == (
        "Heat to 55°F [1].",
        "base",
        "mistral-7b-instruct",
    )
    assert (result.prompt_tokens, result.completion_tokens, result.finish_reason) == (
        120,
        6,
        "stop",
    )
    assert _Server.requests[0]["max_tokens"] == 50 and _Server.requests[0]["stream"] is True


def test_an_adapter_is_a_model_name_on_the_server(server: str, tmp_path: Path):
    folder = tmp_path / "adapter-7"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    manifest = write_manifest(folder, version="adapter-7", base_model="mistral-7b-instruct")
    generator = OpenAICompatibleGenerator(server, model="mistral-7b-instruct")
    generator.activate("adapter-7", folder, manifest.checksum)  # listed: nothing to load
    result = list(generator.stream(MESSAGES, GenerationSettings()))[-1]
    assert isinstance(result, GenerationResult)
    assert result.adapter == "adapter-7" and _Server.requests[-1]["model"] == "adapter-7"
    assert all("messages" in request for request in _Server.requests)
    # Loading an adapter the server does not list: tests/ml/test_vllm_lora.py.
    with pytest.raises(AdapterRefused, match="adapter-8 has no folder"):
        generator.activate("adapter-8", None, None)
    assert generator.served_adapter == "adapter-7"


def test_server_errors_make_the_generator_unavailable(server: str):
    _Server.fail_with = 500
    generator = OpenAICompatibleGenerator(server, model="mistral-7b-instruct")
    with pytest.raises(GeneratorUnavailable, match="did not answer"):
        list(generator.stream(MESSAGES, GenerationSettings()))
