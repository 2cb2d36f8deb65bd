"""A stand-in for the larger question-writing model a deployment configures
(SYNTHESIS_BASE_URL): a real OpenAI-style chat-completions server on loopback that asks
about the words of the sentence it is given, so tests on the tiny model still get pairs
that pass their round trip. It lies outside the portal, as the real API would."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def question_for(sentence: str) -> str:
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z\-]+", sentence) if len(w) > 3][:8]
    return f"What does the standard require about {' '.join(words).lower()}?"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        sentence = body["messages"][-1]["content"].removeprefix("Sentence: ")
        text = question_for(sentence)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        events: list[dict[str, Any]] = [
            {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 12}},
        ]
        for event in events:
            chunk = {"id": "q", "object": "chat.completion.chunk", "created": 0, **event}
            chunk["model"] = body["model"]
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@contextmanager
def question_writer() -> Iterator[str]:
    """Serves until the block ends; yields the base URL for SYNTHESIS_BASE_URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
