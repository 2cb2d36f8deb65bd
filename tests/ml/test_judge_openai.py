"""The OpenAI-compatible judge through the real SDK against a small chat-completions server
on loopback: a JSON judgement, a fenced one, malformed replies, server errors, a bad key."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ml.judging import (
    DEFAULT_RUBRIC,
    JudgeConfig,
    JudgeConfigError,
    JudgeReplyError,
    JudgeRequest,
    JudgeUnavailable,
    Verdict,
    build_user_prompt,
    make_judge,
)
from ml.judging.openai_judge import OpenAICompatibleJudge, parse_reply

GOOD = '{"score": 4.5, "comment": "States the 30-day deadline."}'


class _ChatServer(BaseHTTPRequestHandler):
    """Each POST takes the next scripted reply: a status code (an error) or the message
    content; with none scripted it answers GOOD."""

    replies: deque[int | str] = deque()
    received: list[dict] = []

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append({"body": payload, "auth": self.headers.get("Authorization")})
        reply = type(self).replies.popleft() if type(self).replies else GOOD
        if isinstance(reply, int):
            body = json.dumps({"error": {"message": "failed", "type": "server_error"}}).encode()
            self.send_response(reply)
            self.send_header("retry-after-ms", "1")
        else:
            completion = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": payload["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 900, "completion_tokens": 30, "total_tokens": 930},
            }
            body = json.dumps(completion).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    _ChatServer.replies, _ChatServer.received = deque(), []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ChatServer)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def make(server: str, **overrides: object) -> OpenAICompatibleJudge:
    options: dict = {"base_url": server, "model": "qwen-judge", "timeout_s": 2, "max_retries": 1}
    return OpenAICompatibleJudge(**(options | overrides))


REQUEST = JudgeRequest(
    question="How quickly must a leaking system be repaired?",
    response="Within 30 days [1].",
    reference="Within 30 days.",
    passages=("Systems exceeding this rate must be repaired within 30 days.",),
)


def test_a_json_judgement_becomes_a_verdict(server: str):
    verdict = make(server).judge(REQUEST)
    assert (verdict.score, verdict.comment) == (4.5, "States the 30-day deadline.")
    assert verdict.details["usage"] == {"prompt_tokens": 900, "completion_tokens": 30}
    assert make(server).version == "openai:qwen-judge:rubric-v1"
    [sent] = _ChatServer.received
    body = sent["body"]
    assert sent["auth"] == "Bearer none"  # local servers need no key; the SDK needs one
    assert body["messages"] == [
        {"role": "system", "content": DEFAULT_RUBRIC.text},
        {"role": "user", "content": build_user_prompt(REQUEST)},
    ]
    schema = body["response_format"]["json_schema"]["schema"]
    assert body["response_format"]["type"] == "json_schema"
    assert schema["required"] == ["score", "comment"] and body["temperature"] == 0


def test_a_fenced_json_reply_is_unwrapped(server: str):
    _ChatServer.replies.append(f"```json\n{GOOD}\n```")
    assert make(server).judge(REQUEST).score == 4.5


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("I'd say 4 out of 5.", "not JSON"),
        ('{"score": 4.5, "comment": "ok"} and more', "not JSON"),
        ('{"score": "4.5", "comment": "ok"}', "not a number"),
        ('{"score": 6, "comment": "ok"}', "outside 0..5"),
        ('{"comment": "ok"}', "no score"),
        ('{"score": 4}', "no comment"),
        ("[4.5]", "not an object"),
        ("", "empty"),
    ],
)
def test_malformed_replies_are_reply_errors(server: str, reply: str, message: str):
    _ChatServer.replies.append(reply)
    with pytest.raises(JudgeReplyError, match=message):
        make(server).judge(REQUEST)


def test_server_errors_after_retries_make_the_judge_unavailable(server: str):
    _ChatServer.replies.extend([500, 500])
    with pytest.raises(JudgeUnavailable, match=r"HTTP 500\) after 1 retries"):
        make(server).judge(REQUEST)
    assert len(_ChatServer.received) == 2


def test_a_server_error_then_success_is_retried(server: str):
    _ChatServer.replies.append(503)
    assert make(server).judge(REQUEST).score == 4.5


def test_a_rejected_key_is_a_config_error(server: str):
    _ChatServer.replies.append(401)
    with pytest.raises(JudgeConfigError, match=r"rejected the API key.*JUDGE_API_KEY"):
        make(server, api_key="wrong").judge(REQUEST)


def test_judge_many_keeps_item_errors_and_stops_early_when_the_server_is_down(server: str):
    _ChatServer.replies.extend([GOOD, "not json", GOOD, 500, 500])
    outcomes = make(server).judge_many([REQUEST] * 6)
    assert isinstance(outcomes[0], Verdict) and isinstance(outcomes[2], Verdict)
    assert isinstance(outcomes[1], JudgeReplyError)
    assert all(isinstance(o, JudgeUnavailable) for o in outcomes[3:]) and len(outcomes) == 6
    assert len(_ChatServer.received) == 5  # items 5 and 6 were not sent


def test_missing_settings_are_config_errors():
    with pytest.raises(JudgeConfigError, match="JUDGE_BASE_URL"):
        make_judge(JudgeConfig(backend="openai", model="m"))
    with pytest.raises(JudgeConfigError, match="JUDGE_MODEL"):
        make_judge(JudgeConfig(backend="openai", base_url="http://127.0.0.1:9/v1"))


def test_parse_reply_accepts_a_bare_fence():
    assert parse_reply(f"```\n{GOOD}```") == (4.5, "States the 30-day deadline.")
