"""Claude as the judge, through the official ``anthropic`` SDK.

One item: the Messages API with a forced tool call (``record_judgement``), so the reply is
structured and parsing never guesses. Many items: the Message Batches API (half the price;
results within 24 hours), polled until the batch ends. The rubric is a system block marked
for prompt caching: it is the same for every item, so after the first call it is read from
the cache at a tenth of the input price.

The SDK retries 408/409/429/5xx responses and timeouts itself, with exponential backoff
that honours retry-after; what still fails afterwards becomes JudgeUnavailable.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from ml.judging.base import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_RUBRIC,
    JUDGEMENT_SCHEMA,
    TOOL_NAME,
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
    import anthropic
    from anthropic.types import Message
    from anthropic.types.messages.batch_create_params import Request

MAX_TOKENS = 1024  # a judgement is a score and a few sentences
# The Batches API takes at most 100,000 requests per batch.
MAX_BATCH_REQUESTS = 100_000
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": "Record the score (0 to 5 in steps of 0.5) and the comment for the answer.",
    "input_schema": JUDGEMENT_SCHEMA,
}


class AnthropicJudge(Judge):
    """Thread-safe (the SDK client is); constructing one builds an HTTP client, no request."""

    backend = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = DEFAULT_ANTHROPIC_MODEL,
        base_url: str = "",
        timeout_s: float = 60.0,
        max_retries: int = 4,
        rubric: Rubric = DEFAULT_RUBRIC,
        batch_poll_s: float = 30.0,
        batch_timeout_s: float = 24 * 3600.0,
    ):
        if not api_key:
            raise JudgeConfigError(
                "the Anthropic judge needs an API key: set ANTHROPIC_API_KEY "
                "(or ANTHROPIC_API_KEY_FILE)"
            )
        import anthropic

        self.model = model or DEFAULT_ANTHROPIC_MODEL
        self.prompt_version = rubric.version
        self.rubric = rubric
        self.batch_poll_s = batch_poll_s
        self.batch_timeout_s = batch_timeout_s
        self.max_retries = max_retries
        self.client = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url or None,
            timeout=timeout_s,
            max_retries=max_retries,
        )

    def params(self, request: JudgeRequest) -> dict[str, Any]:
        """The Messages API parameters for one item, the same for a call and a batch entry."""
        return {
            "model": self.model,
            "max_tokens": MAX_TOKENS,
            "system": [
                {
                    "type": "text",
                    "text": self.rubric.text,
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            "tools": [TOOL],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
            "messages": [{"role": "user", "content": build_user_prompt(request)}],
        }

    def judge(self, request: JudgeRequest) -> Verdict:
        import anthropic

        try:
            message = self.client.messages.create(**self.params(request))
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from exc
        return self._verdict(message)

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[Verdict | JudgeError]:
        """Judges through one Message Batch per 100,000 items, polling every batch_poll_s.
        Raises JudgeError when a batch cannot be created or followed to its end (no item is
        judged then); every other failure is one item's outcome."""
        outcomes: list[Verdict | JudgeError | None] = [None] * len(requests)
        ids: dict[str, int] = {}
        for index, request in enumerate(requests):
            custom_id = request.custom_id or f"item-{index}"
            if not _CUSTOM_ID.match(custom_id):
                outcomes[index] = JudgeConfigError(
                    f"custom_id {custom_id!r} is not 1-64 letters, digits, '-' or '_'"
                )
            elif custom_id in ids:
                outcomes[index] = JudgeConfigError(f"custom_id {custom_id!r} appears twice")
            else:
                ids[custom_id] = index
        pending = list(ids.items())
        for start in range(0, len(pending), MAX_BATCH_REQUESTS):
            chunk = dict(pending[start : start + MAX_BATCH_REQUESTS])
            for custom_id, outcome in self._run_batch(chunk, requests).items():
                outcomes[chunk[custom_id]] = outcome
        return [
            JudgeReplyError("the batch results hold no entry for this item") if o is None else o
            for o in outcomes
        ]

    def _run_batch(
        self, chunk: dict[str, int], requests: Sequence[JudgeRequest]
    ) -> dict[str, Verdict | JudgeError]:
        import anthropic

        # params() builds the Messages API parameters as a plain dict; the SDK types a batch
        # entry as a TypedDict of them.
        entries = [
            cast("Request", {"custom_id": custom_id, "params": self.params(requests[index])})
            for custom_id, index in chunk.items()
        ]
        try:
            batch = self.client.messages.batches.create(requests=entries)
            deadline = time.monotonic() + self.batch_timeout_s
            while batch.processing_status != "ended":
                if time.monotonic() >= deadline:
                    self._cancel(batch.id)
                    raise JudgeUnavailable(
                        f"Anthropic batch {batch.id} had not ended after "
                        f"{self.batch_timeout_s:.0f} s; it was cancelled"
                    )
                time.sleep(self.batch_poll_s)
                batch = self.client.messages.batches.retrieve(batch.id)
            outcomes: dict[str, Verdict | JudgeError] = {}
            for entry in self.client.messages.batches.results(batch.id):
                if entry.custom_id in chunk:
                    outcomes[entry.custom_id] = self._batch_outcome(entry, batch.id)
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from exc
        return outcomes

    def _cancel(self, batch_id: str) -> None:
        """Best effort: an abandoned batch would go on costing money."""
        import anthropic

        with contextlib.suppress(anthropic.AnthropicError):
            self.client.messages.batches.cancel(batch_id)

    def _batch_outcome(self, entry: Any, batch_id: str) -> Verdict | JudgeError:
        result = entry.result
        if result.type == "succeeded":
            try:
                return self._verdict(result.message, batch_id=batch_id)
            except JudgeReplyError as exc:
                return exc
        if result.type == "errored":
            error = result.error.error
            text = f"Anthropic could not judge this item ({error.type}): {error.message}"
            # An invalid request stays invalid; anything else (overloaded, api_error) may pass
            # on a later attempt.
            if error.type in {"invalid_request_error", "not_found_error"}:
                return JudgeConfigError(text)
            if error.type in {"authentication_error", "permission_error", "billing_error"}:
                return JudgeConfigError(text)
            return JudgeUnavailable(text)
        if result.type == "expired":
            return JudgeUnavailable(f"batch {batch_id} expired before this item was processed")
        return JudgeError(f"batch {batch_id} was cancelled before this item was processed")

    def _verdict(self, message: Message, *, batch_id: str | None = None) -> Verdict:
        calls = [
            block
            for block in message.content
            if block.type == "tool_use" and getattr(block, "name", "") == TOOL_NAME
        ]
        if not calls:
            kinds = ", ".join(block.type for block in message.content) or "nothing"
            raise JudgeReplyError(
                f"Claude replied with {kinds} instead of a {TOOL_NAME} call "
                f"(stop_reason {message.stop_reason})"
            )
        score, comment = validate_judgement(calls[0].input)
        usage = message.usage
        usage_figures = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
        for name in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            value = getattr(usage, name, None)
            if value is not None:
                usage_figures[name] = value
        details: dict[str, Any] = {
            "message_id": message.id,
            "model": message.model,
            "stop_reason": message.stop_reason,
            "usage": usage_figures,
        }
        if batch_id is not None:
            details["batch_id"] = batch_id
        return Verdict(
            score=score,
            comment=comment,
            backend=self.backend,
            model=self.model,
            prompt_version=self.prompt_version,
            details=details,
        )

    def _error(self, exc: anthropic.AnthropicError) -> JudgeError:
        """The JudgeError for what the SDK raised after its own retries."""
        import anthropic

        detail = getattr(exc, "api_message", None) or str(exc)
        if isinstance(exc, anthropic.AuthenticationError):
            return JudgeConfigError(
                "Anthropic rejected the API key (HTTP 401): check ANTHROPIC_API_KEY"
            )
        if isinstance(exc, anthropic.PermissionDeniedError):
            return JudgeConfigError(
                f"Anthropic refused access (HTTP 403): the API key may not use {self.model} "
                f"or this workspace; check ANTHROPIC_API_KEY and JUDGE_MODEL ({detail})"
            )
        if isinstance(exc, anthropic.NotFoundError):
            return JudgeConfigError(
                f"Anthropic does not know the model {self.model!r} (HTTP 404): check JUDGE_MODEL"
            )
        if isinstance(exc, anthropic.APITimeoutError):
            return JudgeUnavailable(
                f"Anthropic did not answer in time after {self.max_retries} retries"
            )
        if isinstance(exc, anthropic.APIConnectionError):
            return JudgeUnavailable(
                f"cannot reach Anthropic after {self.max_retries} retries: {detail}"
            )
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            if status == 429 or status >= 500 or status in {408, 409}:
                return JudgeUnavailable(
                    f"Anthropic is unavailable (HTTP {status}) after {self.max_retries} "
                    f"retries: {detail}"
                )
            if status == 402:
                return JudgeConfigError(
                    f"Anthropic asks for payment (HTTP 402): check the account's billing ({detail})"
                )
            return JudgeConfigError(f"Anthropic refused the request (HTTP {status}): {detail}")
        return JudgeConfigError(f"the Anthropic client failed: {detail}")
