"""The OpenAI-style backend: a chat-completions server (vLLM, SGLang) that serves the base
model and every adapter version under its own model name.

Promotion loads the adapter into vLLM through its runtime LoRA API
(``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``, ``--enable-lora``) under the version string,
which is unique per trained adapter: a name is never reused for other contents, so vLLM's
adapter cache can never answer with stale weights.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, cast

from ml import adapters
from ml.generator import GenerationResult, GenerationSettings, GeneratorUnavailable

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletionMessageParam

logger = logging.getLogger(__name__)

_ALREADY_LOADED = re.compile(r"already\s+(been\s+)?loaded", re.IGNORECASE)
_NO_ADAPTER = re.compile(r"no\s+adapter\s+found", re.IGNORECASE)
_NOT_FOUND = re.compile(r"not\s+found|cannot\s+be\s+found|does\s+not\s+exist", re.IGNORECASE)
_RUNTIME_LORA_HINT = (
    "start vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora "
    "(and a --max-lora-rank at least the adapter's rank)"
)


class OpenAICompatibleGenerator:
    """A chat-completions server (vLLM with ``--enable-lora``): each adapter version is
    served under its own model name, so a reload can never return a stale cached adapter."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str = "none",
        timeout: float = 120,
        adapter_root: str = "",
        local_adapter_root: Path | None = None,
        keep_adapters: int = 2,
    ):
        from openai import OpenAI

        if keep_adapters < 0:
            raise ValueError(f"keep_adapters must be 0 or more, not {keep_adapters}")
        self.client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=1)
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self.adapter_root = adapter_root
        self.local_adapter_root = local_adapter_root
        self.keep_adapters = keep_adapters
        self._served = adapters.BASE
        self._loaded: list[str] = []  # versions made sure of on the server, oldest first
        self._lock = threading.Lock()  # guards _served for streams
        self._swap_lock = threading.Lock()  # one activation at a time

    @property
    def served_adapter(self) -> str:
        return self._served

    def activate(self, version: str, path: Path | None, checksum: str | None) -> None:
        """Serves ``version`` once its folder verifies and the server holds it; loads it
        into the server when the server does not list it yet. Raises AdapterRefused, and
        then the previous version keeps serving."""
        with self._swap_lock:
            if version != adapters.BASE:
                if path is None:
                    raise adapters.AdapterRefused(f"adapter {version} has no folder")
                manifest = adapters.verify(path, expected_checksum=checksum)
                if manifest.version != version:
                    raise adapters.AdapterRefused(
                        f"{path} holds adapter {manifest.version}, not {version}"
                    )
                if version not in self._server_models():
                    self._load(version, self.server_path(path))
                if version in self._loaded:
                    self._loaded.remove(version)
                self._loaded.append(version)
            with self._lock:
                self._served = version
            self._unload_old()

    def server_path(self, path: Path) -> str:
        """Where the vLLM host sees the adapter folder at local ``path``."""
        if self.adapter_root and self.local_adapter_root is not None:
            for local, root in (
                (path.absolute(), self.local_adapter_root.absolute()),
                (path.resolve(), self.local_adapter_root.resolve()),
            ):
                if local.is_relative_to(root):
                    return str(PurePosixPath(self.adapter_root, local.relative_to(root).as_posix()))
        return str(path.absolute())

    def _server_models(self) -> set[str]:
        import openai

        try:
            return {m.id for m in self.client.models.list()}
        except openai.OpenAIError as exc:
            raise adapters.AdapterRefused(f"cannot list the server's models: {exc}") from exc

    def _load(self, version: str, server_path: str) -> None:
        import openai

        url = f"{self.base_url}/load_lora_adapter"
        try:
            self.client.post(
                "/load_lora_adapter",
                cast_to=str,
                body={"lora_name": version, "lora_path": server_path},
            )
        except openai.APIStatusError as exc:
            status, message = exc.status_code, _error_message(exc)
            # Several web processes promote at once: the first load wins, the others see this.
            if status == 400 and _ALREADY_LOADED.search(message):
                return
            if status == 404 and _NO_ADAPTER.search(message):
                raise adapters.AdapterRefused(
                    f"the generation server cannot load adapter {version} from {server_path} "
                    f"({status}: {message}); mount the adapters folder on the vLLM host and "
                    "set the adapter root (GENERATOR_ADAPTER_ROOT) to where it is mounted"
                ) from exc
            if status in (404, 405):
                raise adapters.AdapterRefused(
                    f"the generation server has no runtime LoRA endpoint at {url} "
                    f"({status}: {message}); {_RUNTIME_LORA_HINT}"
                ) from exc
            raise adapters.AdapterRefused(
                f"the generation server refused to load adapter {version} from {server_path} "
                f"({status}: {message}); check that it can read that folder and that "
                f"{_RUNTIME_LORA_HINT}"
            ) from exc
        except openai.OpenAIError as exc:
            raise adapters.AdapterRefused(
                f"cannot reach the generation server at {url} to load adapter {version}: {exc}"
            ) from exc
        logger.info("loaded adapter %s into %s from %s", version, self.base_url, server_path)

    def _unload_old(self) -> None:
        """Unloads what is neither served nor among the newest ``keep_adapters``; a failure
        is only logged (and retried after the next switch): this is housekeeping."""
        import openai

        keep = set(self._loaded[-self.keep_adapters :]) if self.keep_adapters else set()
        for name in [v for v in self._loaded if v not in keep and v != self._served]:
            try:
                self.client.post(
                    "/unload_lora_adapter",
                    cast_to=str,
                    body={"lora_name": name},
                    options={"max_retries": 0},  # the next switch retries
                )
            except openai.APIStatusError as exc:
                message = _error_message(exc)
                if exc.status_code not in (400, 404) or not _NOT_FOUND.search(message):
                    logger.warning(
                        "could not unload adapter %s from %s (%s: %s)",
                        name,
                        self.base_url,
                        exc.status_code,
                        message,
                    )
                    continue
                # Not found: another web process unloaded it first.
            except openai.OpenAIError as exc:
                logger.warning("could not unload adapter %s from %s: %s", name, self.base_url, exc)
                continue
            self._loaded.remove(name)
            logger.info("unloaded adapter %s from %s", name, self.base_url)

    def stream(
        self, messages: list[dict[str, str]], settings: GenerationSettings
    ) -> Iterator[str | GenerationResult]:
        import openai

        with self._lock:
            adapter = self._served
        model = self.model_name if adapter == adapters.BASE else adapter
        started = time.perf_counter()
        first_token: float | None = None
        pieces: list[str] = []
        usage = None
        finish = "stop"
        try:
            response = self.client.chat.completions.create(
                model=model,
                messages=cast("list[ChatCompletionMessageParam]", messages),
                max_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                top_p=settings.top_p,
                stream=True,
                stream_options={"include_usage": True},
            )
            for event in response:
                usage = event.usage or usage
                for choice in event.choices:
                    finish = choice.finish_reason or finish
                    piece = choice.delta.content or ""
                    if piece:
                        if first_token is None:
                            first_token = time.perf_counter()
                        pieces.append(piece)
                        yield piece
        except openai.OpenAIError as exc:
            raise GeneratorUnavailable(f"the generation server did not answer: {exc}") from exc
        finished = time.perf_counter()
        yield GenerationResult(
            text="".join(pieces),
            model=model,
            adapter=adapter,
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or len(pieces),
            first_token_ms=round(((first_token or finished) - started) * 1000, 1),
            generate_ms=round((finished - started) * 1000, 1),
            finish_reason="length" if finish == "length" else "stop",
        )


def _error_message(exc: openai.APIStatusError) -> str:
    """The message of an error reply: vLLM's ``{"error": {"message"}}`` (or the older
    top-level ``{"message"}``), FastAPI's ``{"detail"}`` for a route that is not there, or
    the text of the reply."""
    body = exc.body
    if isinstance(body, dict):
        for key in ("message", "detail"):
            if body.get(key):
                return str(body[key])
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return exc.message
