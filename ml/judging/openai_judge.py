"""Any OpenAI-compatible chat server as the judge (vLLM, TGI, llama.cpp, OpenAI itself),
through the ``openai`` SDK.

The judgement is asked for as JSON with a ``json_schema`` response format, the same
{score, comment} shape the Anthropic judge gets through its tool, and parsed strictly: a
JSON object with a number from 0 to 5 and a comment. A reply wrapped in a ```json fence is
unwrapped (some servers ignore the response format); anything else is a JudgeReplyError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ml.judging.base import (
    DEFAULT_RUBRIC,
    JUDGEMENT_SCHEMA,
    Judge,
    JudgeConfigError,
    JudgeError,
    JudgeReplyError,
    JudgeRequest,
    JudgeUnavailable,
    Rubric,
    Verdict,
    build_user_prompt,
    validate_judgement,
)

if TYPE_CHECKING:
    import openai

MAX_TOKENS = 1024
_FENCE = re.compile(r"^```(?:json)?\s*\n(.*?)\n?```$", re.DOTALL | re.IGNORECASE)


def parse_reply(content: str | None) -> tuple[float, str]:
    """(score, comment) from a reply that must be a JSON object, perhaps in a ```json fence."""
    text = (content or "").strip()
    if not text:
        raise JudgeReplyError("the judge's reply is empty")
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JudgeReplyError(f"the judge's reply is not JSON ({exc.msg}): {text!r:.200}") from exc
    return validate_judgement(payload)


class OpenAICompatibleJudge(Judge):
    """Thread-safe (the SDK client is); constructing one builds an HTTP client, no request."""

    backend = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "none",
        timeout_s: float = 60.0,
        max_retries: int = 4,
        rubric: Rubric = DEFAULT_RUBRIC,
    ):
        if not base_url:
            raise JudgeConfigError(
                "the OpenAI-compatible judge needs the server's address: set JUDGE_BASE_URL "
                "(for example http://localhost:8000/v1)"
            )
        if not model:
            raise JudgeConfigError(
                "the OpenAI-compatible judge needs a model name: set JUDGE_MODEL"
            )
        from openai import OpenAI

        self.model = model
        self.prompt_version = rubric.version
        self.rubric = rubric
        self.base_url = base_url
        self.max_retries = max_retries
        self.client = OpenAI(
            base_url=base_url,
            api_key=api_key or "none",
            timeout=timeout_s,
            max_retries=max_retries,
        )

    def params(self, request: JudgeRequest) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": self.rubric.text},
                {"role": "user", "content": build_user_prompt(request)},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "judgement", "schema": JUDGEMENT_SCHEMA, "strict": True},
            },
            "temperature": 0,
            "max_tokens": MAX_TOKENS,
        }

    def judge(self, request: JudgeRequest) -> Verdict:
        import openai

        try:
            completion = self.client.chat.completions.create(**self.params(request))
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        if not completion.choices:
            raise JudgeReplyError("the judge's reply has no choices")
        choice = completion.choices[0]
        if choice.finish_reason == "length":
            raise JudgeReplyError(f"the judge's reply was cut off at {MAX_TOKENS} tokens")
        score, comment = parse_reply(choice.message.content)
        usage = completion.usage
        details: dict[str, Any] = {
            "completion_id": completion.id,
            "model": completion.model,
            "finish_reason": choice.finish_reason,
        }
        if usage is not None:
            details["usage"] = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
            }
        return Verdict(
            score=score,
            comment=comment,
            backend=self.backend,
            model=self.model,
            prompt_version=self.prompt_version,
            details=details,
        )

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[Verdict | JudgeError]:
        """One request per item. A malformed reply fails its item only; once the server is
        unavailable or refuses the configuration, the remaining items get that error at once
        rather than each waiting out the retries."""
        outcomes: list[Verdict | JudgeError] = []
        for index, request in enumerate(requests):
            try:
                outcomes.append(self.judge(request))
            except JudgeReplyError as exc:
                outcomes.append(exc)
            except JudgeError as exc:
                outcomes.extend([exc] * (len(requests) - index))
                break
        return outcomes

    def _error(self, exc: openai.OpenAIError) -> JudgeError:
        """The JudgeError for what the SDK raised after its own retries."""
        import openai

        where = f"the judge server at {self.base_url}"
        if isinstance(exc, openai.AuthenticationError):
            return JudgeConfigError(f"{where} rejected the API key (HTTP 401): check JUDGE_API_KEY")
        if isinstance(exc, openai.PermissionDeniedError):
            return JudgeConfigError(f"{where} refused access (HTTP 403): check JUDGE_API_KEY")
        if isinstance(exc, openai.NotFoundError):
            return JudgeConfigError(
                f"{where} does not serve the model {self.model!r} or has no chat endpoint "
                "(HTTP 404): check JUDGE_MODEL and JUDGE_BASE_URL (it usually ends in /v1)"
            )
        if isinstance(exc, openai.APITimeoutError):
            return JudgeUnavailable(
                f"{where} did not answer in time after {self.max_retries} retries"
            )
        if isinstance(exc, openai.APIConnectionError):
            return JudgeUnavailable(f"cannot reach {where} after {self.max_retries} retries")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status == 429 or status >= 500 or status in {408, 409}:
                return JudgeUnavailable(
                    f"{where} is unavailable (HTTP {status}) after {self.max_retries} retries"
                )
            return JudgeConfigError(
                f"{where} refused the request (HTTP {status}): {exc.message}; does it support "
                "response_format json_schema?"
            )
        return JudgeConfigError(f"the OpenAI client failed: {exc}")
