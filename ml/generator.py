"""Answer generation behind one interface; the backends live beside this module.

- ``ml.llamacpp_generator.LlamaCppGenerator`` (``llamacpp``, the CPU default): llama.cpp
  on a GGUF file in this process, one model instance per served adapter version.
- ``ml.transformers_generator.TransformersGenerator`` (``transformers``): transformers +
  peft in this process (a GPU without a serving engine; the reference for checks).
- ``ml.openai_generator.OpenAICompatibleGenerator`` (``openai``): a vLLM or SGLang server
  with LoRA enabled, where every adapter version is a distinct model name.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol


class Turns:
    """One model user at a time, where a waiting adapter swap goes before any generation
    that has not started yet (a plain lock is unfair: under steady load a swap could wait
    behind queued requests indefinitely)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._busy = False
        self._swaps_waiting = 0

    @contextlib.contextmanager
    def generation(self) -> Iterator[None]:
        with self._condition:
            while self._busy or self._swaps_waiting:
                self._condition.wait()
            self._busy = True
        try:
            yield
        finally:
            with self._condition:
                self._busy = False
                self._condition.notify_all()

    @contextlib.contextmanager
    def swap(self) -> Iterator[None]:
        with self._condition:
            self._swaps_waiting += 1
            while self._busy:
                self._condition.wait()
            self._busy = True
            self._swaps_waiting -= 1
        try:
            yield
        finally:
            with self._condition:
                self._busy = False
                self._condition.notify_all()


class GeneratorUnavailable(RuntimeError):
    """The model cannot answer now (not loaded, server down). The question is kept."""


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 192  # help: cap on answer length; answers are trimmed to a full sentence
    temperature: float = 0.0  # help: 0 means greedy decoding (reproducible answers)
    top_p: float = 1.0
    repetition_penalty: float = 1.1
    # help: numbers only as the prompt writes them (ml/grounding.py); local backends only
    ground_numbers: bool = False
    # help: logit bonus for continuing the passage being restated (ml/copying.py; 0: off)
    copy_bias: float = 0.0
    # help: logit bonus for passage [1] (its numbers, and its sentences' openings at the start)
    first_passage_bias: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GenerationResult:
    text: str
    model: str
    adapter: str
    prompt_tokens: int
    completion_tokens: int
    first_token_ms: float
    generate_ms: float
    finish_reason: str  # "stop" or "length"


class Generator(Protocol):
    model_name: str

    @property
    def served_adapter(self) -> str: ...

    def stream(
        self, messages: list[dict[str, str]], settings: GenerationSettings
    ) -> Iterator[str | GenerationResult]:
        """Yields text pieces as they are generated, then one GenerationResult."""
        ...

    def activate(self, version: str, path: Path | None, checksum: str | None) -> None:
        """Serves ``version`` from now on (``base``: no adapter); raises AdapterRefused."""
        ...
