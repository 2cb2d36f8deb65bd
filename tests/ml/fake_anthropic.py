"""A loopback stand-in for the Anthropic Messages and Message Batches APIs, speaking enough
of them for the real ``anthropic`` SDK: POST /v1/messages, POST /v1/messages/batches, GET
/v1/messages/batches/{id}, GET /v1/messages/batches/{id}/results (JSONL) and POST
/v1/messages/batches/{id}/cancel.

Each POST takes the next scripted behaviour (``fake.script(RATE_LIMIT, OK)``); with none
scripted it answers normally. A normal reply calls record_judgement with the score the
judged answer asks for ("... expect 4.5 ..."), or 3.0, so tests can tell requests apart.
Every request is recorded (method, path, headers, JSON body). Prompt caching is imitated:
the first request with a given cache_control system block reports cache creation, later
ones a cache read.

    with FakeAnthropic() as fake:
        fake.script(SERVER_ERROR, OK)
        judge = AnthropicJudge(api_key="sk-test", base_url=fake.url, ...)
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Behaviours for the next POST request.
OK = "ok"
RATE_LIMIT = "rate_limit"  # 429 with retry-after-ms
SERVER_ERROR = "server_error"  # 500
OVERLOADED = "overloaded"  # 529
HANG = "hang"  # no answer for hang_s, longer than the client's timeout
UNAUTHORIZED = "unauthorized"  # 401 invalid x-api-key
NOT_FOUND = "not_found"  # 404 unknown model
TEXT_BLOCK = "text_block"  # a text block instead of the tool call
MISSING_SCORE = "missing_score"  # tool call without a score
SCORE_WORD = "score_word"  # score "high"
SCORE_TOO_HIGH = "score_too_high"  # score 7

# Per-item outcomes in a batch (fake.batch_outcomes[custom_id]); any behaviour above that
# shapes a message (OK, TEXT_BLOCK, ...) is a succeeded result with that message.
ERRORED = "errored"  # api_error: transient
ERRORED_INVALID = "errored_invalid"  # invalid_request_error: permanent
EXPIRED = "expired"
CANCELED = "canceled"

_EXPECT = re.compile(r"expect (-?\d+(?:\.\d+)?)")
_STATUS = {
    RATE_LIMIT: (429, "rate_limit_error", "Number of requests has exceeded your rate limit"),
    SERVER_ERROR: (500, "api_error", "Internal server error"),
    OVERLOADED: (529, "overloaded_error", "Overloaded"),
    UNAUTHORIZED: (401, "authentication_error", "invalid x-api-key"),
    NOT_FOUND: (404, "not_found_error", "model: no such model"),
}


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the parsed JSON body, None for a GET


class FakeAnthropic:
    def __init__(
        self, *, hang_s: float = 2.0, retry_after_ms: str = "1", polls_before_end: int = 1
    ):
        self.hang_s = hang_s
        self.retry_after_ms = retry_after_ms
        self.polls_before_end = polls_before_end  # retrieves that still say in_progress
        self.batch_outcomes: dict[str, str] = {}
        self.received: list[Received] = []
        self._behaviours: deque[str] = deque()
        self._batches: dict[str, dict[str, Any]] = {}
        self._cached: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.stopping = threading.Event()  # set on exit: releases hung handlers
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        # A short poll interval: shutdown() waits up to one interval, at every test's end.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def script(self, *behaviours: str) -> None:
        with self._lock:
            self._behaviours.extend(behaviours)

    def posts(self, path: str = "/v1/messages") -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.method == "POST" and r.path == path]

    # What the handler calls.

    def record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def next_behaviour(self) -> str:
        with self._lock:
            return self._behaviours.popleft() if self._behaviours else OK

    def message(self, params: dict[str, Any], behaviour: str) -> dict[str, Any]:
        """A Messages API reply to ``params``, shaped by ``behaviour``."""
        text = json.dumps(params.get("messages", []))
        found = _EXPECT.search(text)
        score: Any = float(found.group(1)) if found else 3.0
        judgement: dict[str, Any] = {"score": score, "comment": f"Scored {score} for the answer."}
        if behaviour == MISSING_SCORE:
            del judgement["score"]
        elif behaviour == SCORE_WORD:
            judgement["score"] = "high"
        elif behaviour == SCORE_TOO_HIGH:
            judgement["score"] = 7
        if behaviour == TEXT_BLOCK:
            content: list[dict[str, Any]] = [
                {"type": "text", "text": "I would give this answer a 4."}
            ]
            stop_reason = "end_turn"
        else:
            tool = params.get("tool_choice", {}).get("name", "record_judgement")
            content = [{"type": "tool_use", "id": "toolu_01", "name": tool, "input": judgement}]
            stop_reason = "tool_use"
        return {
            "id": f"msg_{next(self._ids):04d}",
            "type": "message",
            "role": "assistant",
            "model": params.get("model", ""),
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 200, "output_tokens": 40, **self._cache_usage(params)},
        }

    def _cache_usage(self, params: dict[str, Any]) -> dict[str, int]:
        system = params.get("system")
        blocks = system if isinstance(system, list) else []
        cached = "".join(b.get("text", "") for b in blocks if b.get("cache_control"))
        if not cached:
            return {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        with self._lock:
            seen = cached in self._cached
            self._cached.add(cached)
        tokens = len(cached) // 4
        if seen:
            return {"cache_creation_input_tokens": 0, "cache_read_input_tokens": tokens}
        return {"cache_creation_input_tokens": tokens, "cache_read_input_tokens": 0}

    def create_batch(self, requests: list[dict[str, Any]]) -> dict[str, Any] | None:
        batch_id = f"msgbatch_{next(self._ids):04d}"
        with self._lock:
            self._batches[batch_id] = {"requests": requests, "polls": 0, "canceled": False}
        return self.batch_object(batch_id, poll=False)

    def batch_object(self, batch_id: str, *, poll: bool = True) -> dict[str, Any] | None:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return None
            if poll:
                batch["polls"] += 1
            ended = batch["canceled"] or batch["polls"] > self.polls_before_end
            count = len(batch["requests"])
        counts = {"processing": 0 if ended else count, "succeeded": 0, "errored": 0}
        counts.update(canceled=0, expired=0)
        if ended:
            for entry in batch["requests"]:
                counts[self._result_type(entry["custom_id"], batch)] += 1
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts,
            "created_at": "2025-01-01T00:00:00Z",
            "expires_at": "2025-01-02T00:00:00Z",
            "ended_at": "2025-01-01T00:05:00Z" if ended else None,
            "cancel_initiated_at": "2025-01-01T00:04:00Z" if batch["canceled"] else None,
            "archived_at": None,
            "results_url": f"{self.url}/v1/messages/batches/{batch_id}/results" if ended else None,
        }

    def _result_type(self, custom_id: str, batch: dict[str, Any]) -> str:
        if batch["canceled"]:
            return "canceled"
        outcome = self.batch_outcomes.get(custom_id, OK)
        types = {ERRORED: "errored", ERRORED_INVALID: "errored", EXPIRED: "expired"}
        return types.get(outcome, "canceled" if outcome == CANCELED else "succeeded")

    def cancel_batch(self, batch_id: str) -> dict[str, Any] | None:
        with self._lock:
            if batch_id in self._batches:
                self._batches[batch_id]["canceled"] = True
        return self.batch_object(batch_id, poll=False)

    def batch_results(self, batch_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None:
            return None
        lines = []
        for entry in reversed(batch["requests"]):  # the real API gives no order either
            custom_id = entry["custom_id"]
            result_type = self._result_type(custom_id, batch)
            result: dict[str, Any] = {"type": result_type}
            if result_type == "errored":
                invalid = self.batch_outcomes[custom_id] == ERRORED_INVALID
                kind = "invalid_request_error" if invalid else "api_error"
                error = {"type": kind, "message": f"{kind} for {custom_id}"}
                result["error"] = {"type": "error", "error": error}
            elif result_type == "succeeded":
                behaviour = self.batch_outcomes.get(custom_id, OK)
                result["message"] = self.message(entry["params"], behaviour)
            lines.append({"custom_id": custom_id, "result": result})
        return lines


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    @property
    def fake(self) -> FakeAnthropic:
        return self.server.fake  # type: ignore[attr-defined]

    def _receive(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.fake.record(Received(self.command, self.path, headers, body))
        return body

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            content_type = (
                "application/x-jsonl" if isinstance(payload, bytes) else "application/json"
            )
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("request-id", "req_fake")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a hang longer than its timeout)

    def _error(self, behaviour: str) -> None:
        status, kind, message = _STATUS[behaviour]
        headers = {"retry-after-ms": self.fake.retry_after_ms}
        body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "r"}
        self._send(status, body, headers)

    def do_POST(self) -> None:
        body = self._receive()
        behaviour = self.fake.next_behaviour()
        if behaviour == HANG:
            self.fake.stopping.wait(self.fake.hang_s)
            behaviour = OK  # answer late: the client has stopped listening by now
        if behaviour in _STATUS:
            self._error(behaviour)
            return
        path = self.path.rstrip("/")
        if path == "/v1/messages":
            self._send(200, self.fake.message(body, behaviour))
        elif path == "/v1/messages/batches":
            self._send(200, self.fake.create_batch(body["requests"]))
        elif match := re.fullmatch(r"/v1/messages/batches/([\w-]+)/cancel", path):
            batch = self.fake.cancel_batch(match.group(1))
            self._send(200 if batch else 404, batch or {"type": "error"})
        else:
            self._send(404, {"type": "error", "error": {"type": "not_found_error"}})

    def do_GET(self) -> None:
        self._receive()
        path = self.path.split("?")[0].rstrip("/")
        if match := re.fullmatch(r"/v1/messages/batches/([\w-]+)/results", path):
            lines = self.fake.batch_results(match.group(1))
            if lines is None:
                self._send(404, {"type": "error", "error": {"type": "not_found_error"}})
                return
            self._send(200, b"".join(json.dumps(line).encode() + b"\n" for line in lines))
        elif match := re.fullmatch(r"/v1/messages/batches/([\w-]+)", path):
            batch = self.fake.batch_object(match.group(1))
            self._send(200 if batch else 404, batch or {"type": "error"})
        else:
            self._send(404, {"type": "error", "error": {"type": "not_found_error"}})
