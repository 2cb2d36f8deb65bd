"""The llama.cpp backend: a GGUF model in this process, the CPU default.

Each served version (``base`` or an adapter) gets its own llama.cpp model instance, loaded
with that adapter's GGUF LoRA. Loading happens beside the running answers and the switch
does not wait for them: an answer always finishes on the instance it started on and never
mixes two adapters, and an instance is freed only once no answer uses it. The last ``keep_adapters`` instances stay loaded for a quick rollback
(the weights are memory-mapped, so each extra instance costs its context, not the model).

Prompts are rendered with the chat template stored in the GGUF file (the template the
Hugging Face tokenizer carries), and decoding follows the same settings, stop tokens and
counting as the transformers backend. One difference: llama.cpp applies the repetition
penalty over the last ``penalty_window`` tokens, transformers over the whole sequence.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ml import adapters
from ml.copying import CopyBias
from ml.generator import GenerationResult, GenerationSettings, GeneratorUnavailable, Turns
from ml.grounding import NumberGrounding, NumberVocabulary
from ml.prompting import (
    copy_source,
    first_passage_sentences,
    first_passage_text,
    grounding_text,
)

_open: weakref.WeakSet[LlamaCppGenerator] = weakref.WeakSet()


@atexit.register
def _close_open() -> None:
    """Frees models before the interpreter tears down the llama.cpp bindings, not after
    (which prints an ignored TypeError from each instance's finaliser)."""
    for generator in list(_open):
        generator.close()


STOP_TOKENS = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<|end|>")


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def load_llama(
    model_path: Path,
    *,
    lora_path: Path | None = None,
    threads: int | None = None,
    context_tokens: int = 4096,
    penalty_window: int = 64,
    seed: int = 0,
    flash_attention: bool = False,
) -> Any:
    """A llama.cpp model instance, or GeneratorUnavailable with the reason. Flash attention
    prefills about 30% faster on CPU here (SmolLM2-135M, 869-token prompt, 2 threads: Q8_0
    318 -> 414 tokens/s, Q4_0 495 -> 646) and decodes the same or faster, but its other
    summation order flips near-tied greedy tokens: an adapter's answers then no longer match
    transformers + peft token for token. Off unless asked for."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise GeneratorUnavailable(
            f"llama-cpp-python is not installed ({exc}); run scripts/install.sh"
        ) from exc
    if not model_path.is_file():
        raise GeneratorUnavailable(f"no GGUF model file at {model_path}")
    if lora_path is not None:
        check_gguf_lora(lora_path)
    batch_threads = threads or default_threads()
    # Decoding one token is a chain of small steps where every thread waits for the others:
    # on a few cores one thread per two decodes as fast and suffers far less when another
    # process takes a core (measured on 2 cores: 65 tokens/s on 1 thread, 60 on 2).
    # The prompt is a big batch, which does use every core.
    decode_threads = max(1, batch_threads // 2) if threads is None else threads
    try:
        llama = Llama(
            model_path=str(model_path),
            lora_path=str(lora_path) if lora_path else None,
            n_ctx=context_tokens,
            n_threads=decode_threads,
            n_threads_batch=batch_threads,
            last_n_tokens_size=penalty_window,
            seed=seed,
            flash_attn=flash_attention,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        what = f"adapter {lora_path}" if lora_path else f"model {model_path}"
        raise GeneratorUnavailable(f"llama.cpp cannot load the {what}: {exc}") from exc
    # llama-cpp-python 0.3.36 tests its ctypes pointer against None, so an adapter that
    # llama.cpp failed to load (a NULL pointer) passes silently: test it here.
    if lora_path is not None and not getattr(llama, "_lora_adapter", None):
        llama.close()
        raise GeneratorUnavailable(f"llama.cpp cannot load the adapter {lora_path}")
    return llama


def check_gguf_lora(path: Path) -> None:
    """Refuses a file that is not a GGUF LoRA before llama.cpp reads it."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
        fields = {
            key: reader.fields[key].contents()
            for key in ("general.type", "adapter.type")
            if key in reader.fields
        }
    except Exception as exc:  # the reader raises many kinds on a damaged file
        raise GeneratorUnavailable(
            f"llama.cpp cannot load the adapter {path}: not a GGUF file ({exc})"
        ) from exc
    if fields.get("general.type") != "adapter" or fields.get("adapter.type") != "lora":
        raise GeneratorUnavailable(
            f"llama.cpp cannot load the adapter {path}: it is not a GGUF LoRA ({fields})"
        )


class ChatPrompt:
    """Renders messages with the GGUF's own chat template and tokenizes them as llama.cpp
    will read them."""

    def __init__(self, llama: Any) -> None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        metadata = llama.metadata
        template = metadata.get("tokenizer.chat_template")
        if not template:
            raise GeneratorUnavailable("the GGUF file carries no chat template")
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        self._template = environment.from_string(template)
        self._bos = self._token_text(llama, llama.token_bos())
        self._eos = self._token_text(llama, llama.token_eos())
        self._add_bos = metadata.get("tokenizer.ggml.add_bos_token", "true") == "true"
        self.stop_ids = frozenset(self._stop_ids(llama))

    @staticmethod
    def _token_text(llama: Any, token: int) -> str:
        if token < 0:
            return ""
        return llama.detokenize([token], special=True).decode("utf-8", errors="replace")

    @staticmethod
    def _stop_ids(llama: Any) -> set[int]:
        ids = {llama.token_eos()}
        for text in STOP_TOKENS:
            tokens = llama.tokenize(text.encode(), add_bos=False, special=True)
            if len(tokens) == 1:
                ids.add(tokens[0])
        return {i for i in ids if i >= 0}

    def render(self, messages: list[dict[str, str]]) -> str:
        return self._template.render(
            messages=messages,
            add_generation_prompt=True,
            bos_token=self._bos,
            eos_token=self._eos,
        )

    def tokens(self, llama: Any, messages: list[dict[str, str]]) -> list[int]:
        text = self.render(messages)
        add_bos = self._add_bos and not (self._bos and text.startswith(self._bos))
        return list(llama.tokenize(text.encode(), add_bos=add_bos, special=True))


def sample(
    llama: Any,
    prompt: list[int],
    *,
    max_new_tokens: int,
    stop_ids: frozenset[int],
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    repetition_penalty: float = 1.0,
    logits_processor: Callable[[Any, Any], Any] | None = None,
) -> Iterator[int]:
    """Token ids after ``prompt`` until a stop token (not yielded) or ``max_new_tokens``.
    Greedy when temperature is 0, else temperature with top-k (0: off) and top-p.
    ``logits_processor`` (input ids, scores) -> scores runs before any sampler."""
    from llama_cpp import LogitsProcessorList

    greedy = temperature <= 0
    tokens = llama.generate(
        prompt,
        temp=0.0 if greedy else temperature,
        top_k=1 if greedy else top_k,
        top_p=1.0 if greedy else top_p,
        min_p=0.0,
        repeat_penalty=repetition_penalty,
        logits_processor=LogitsProcessorList([logits_processor]) if logits_processor else None,
        reset=True,  # keeps the longest common prefix already evaluated (the system prompt)
    )
    for count, token in enumerate(tokens, start=1):
        if token in stop_ids:
            return
        yield token
        if count >= max_new_tokens:
            return


class LlamaCppGenerator:
    def __init__(
        self,
        model_path: Path,
        *,
        threads: int | None = None,
        context_tokens: int = 4096,
        keep_adapters: int = 2,
        flash_attention: bool = False,
    ) -> None:
        self.model_path = model_path
        self.model_name = model_path.stem
        self.threads = threads  # None: all cores for prompts, half of them for decoding
        self.context_tokens = context_tokens
        self.keep_adapters = max(1, keep_adapters)
        self.flash_attention = flash_attention
        base = self._load_instance()
        self._prompt = ChatPrompt(base)
        # version -> model instance, oldest first; the served one is always present.
        self._instances: OrderedDict[str, Any] = OrderedDict({adapters.BASE: base})
        self._served = adapters.BASE
        self._in_use: str | None = None  # the version an answer is being generated with
        self._turns = Turns()  # one answer at a time in this process
        self._vocabulary: NumberVocabulary | None = None  # built at the first grounded answer
        self._state = threading.Lock()  # guards _served, _in_use and _instances
        self._loading = threading.Lock()  # one load at a time; answers go on meanwhile
        _open.add(self)

    @property
    def served_adapter(self) -> str:
        return self._served

    def activate(self, version: str, path: Path | None, checksum: str | None) -> None:
        with self._loading:
            with self._state:
                instance = self._instances.get(version)
            if instance is None:
                instance = self._load(version, path, checksum)
            # No waiting for the answer in flight: it keeps its own instance to the end.
            with self._state:
                self._instances[version] = instance
                self._instances.move_to_end(version)
                self._served = version
                self._evict()

    def _load(self, version: str, path: Path | None, checksum: str | None) -> Any:
        if version == adapters.BASE:
            return self._load_instance()
        if path is None:
            raise adapters.AdapterRefused(f"adapter {version} has no folder")
        manifest = adapters.verify(path, expected_checksum=checksum, need_gguf=True)
        if manifest.version != version:
            raise adapters.AdapterRefused(f"{path} holds adapter {manifest.version}, not {version}")
        try:
            return self._load_instance(path / adapters.GGUF_LORA)
        except GeneratorUnavailable as exc:
            raise adapters.AdapterRefused(str(exc)) from exc

    def _load_instance(self, lora_path: Path | None = None) -> Any:
        return load_llama(
            self.model_path,
            lora_path=lora_path,
            threads=self.threads,
            context_tokens=self.context_tokens,
            flash_attention=self.flash_attention,
        )

    def _evict(self) -> None:
        """Drops the oldest instances beyond ``keep_adapters``: never the served one, and
        not the one an answer is using (that goes when the answer ends). Holds _state."""
        while len(self._instances) > self.keep_adapters:
            spare = [v for v in self._instances if v not in (self._served, self._in_use)]
            if not spare:
                return
            instance = self._instances.pop(spare[0])
            close = getattr(instance, "close", None)
            if close is not None:
                close()

    def close(self) -> None:
        """Frees every model instance; later answers get GeneratorUnavailable."""
        with self._turns.swap(), self._state:
            for instance in self._instances.values():
                instance.close()
            self._instances.clear()

    @contextlib.contextmanager
    def _using(self) -> Iterator[tuple[str, Any]]:
        """The served version and its instance, kept from eviction while an answer runs."""
        with self._state:
            adapter = self._served
            llama = self._instances.get(adapter)
            if llama is None:
                raise GeneratorUnavailable("the llama.cpp model has been closed")
            self._in_use = adapter
        try:
            yield adapter, llama
        finally:
            with self._state:
                self._in_use = None
                self._evict()

    def _processor(
        self,
        llama: Any,
        messages: list[dict[str, str]],
        prompt_tokens: int,
        settings: GenerationSettings,
    ) -> Callable[[Any, Any], Any] | None:
        """The copy bias, then the number grounding (each when on), as one processor."""
        steps: list[Callable[[Any, Any], Any]] = []
        source = grounding_text(messages)
        if settings.copy_bias:
            copyable = copy_source(messages).encode()
            ids = llama.tokenize(copyable, add_bos=False, special=False)
            openings = [
                tokens[0]
                for sentence in first_passage_sentences(messages)
                if (tokens := llama.tokenize(sentence.encode(), add_bos=False, special=False))
            ]
            steps.append(
                CopyBias(
                    ids,
                    prompt_tokens,
                    bias=settings.copy_bias,
                    openings=openings,
                    opening_bias=settings.first_passage_bias,
                )
            )
        if settings.ground_numbers:
            if self._vocabulary is None:  # every served version shares the base's vocabulary
                texts = [
                    llama.detokenize([token]).decode("utf-8", errors="replace")
                    for token in range(llama.n_vocab())
                ]
                self._vocabulary = NumberVocabulary.from_texts(texts)
            steps.append(
                NumberGrounding(
                    self._vocabulary,
                    source,
                    prompt_tokens,
                    preferred=first_passage_text(messages),
                    prefer_bias=settings.first_passage_bias,
                )
            )
        if len(steps) < 2:
            return steps[0] if steps else None

        def chained(input_ids: Any, scores: Any) -> Any:
            for step in steps:
                scores = step(input_ids, scores)
            return scores

        return chained

    def stream(
        self, messages: list[dict[str, str]], settings: GenerationSettings
    ) -> Iterator[str | GenerationResult]:
        with self._turns.generation(), self._using() as (adapter, llama):
            started = time.perf_counter()
            prompt = self._prompt.tokens(llama, messages)
            if len(prompt) + settings.max_new_tokens > self.context_tokens:
                raise GeneratorUnavailable(
                    f"the prompt ({len(prompt)} tokens) and answer do not fit the model's "
                    f"context of {self.context_tokens} tokens"
                )
            if settings.temperature > 0:
                llama.set_seed(int.from_bytes(os.urandom(4), "little") >> 1)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            pieces: list[str] = []
            first_token: float | None = None
            count = 0
            stopped = False
            try:
                for token in sample(
                    llama,
                    prompt,
                    max_new_tokens=settings.max_new_tokens,
                    stop_ids=self._prompt.stop_ids,
                    temperature=settings.temperature,
                    top_p=settings.top_p,
                    repetition_penalty=settings.repetition_penalty,
                    logits_processor=self._processor(llama, messages, len(prompt), settings),
                ):
                    count += 1
                    piece = decoder.decode(llama.detokenize([token]))
                    if piece:
                        if first_token is None:
                            first_token = time.perf_counter()
                        pieces.append(piece)
                        yield piece
                stopped = count < settings.max_new_tokens
            except (RuntimeError, ValueError) as exc:
                raise GeneratorUnavailable(f"generation failed: {exc}") from exc
            tail = decoder.decode(b"", final=True)
            if tail:
                pieces.append(tail)
                yield tail
            finished = time.perf_counter()
        yield GenerationResult(
            text="".join(pieces),
            model=self.model_name,
            adapter=adapter,
            prompt_tokens=len(prompt),
            completion_tokens=count,
            first_token_ms=round(((first_token or finished) - started) * 1000, 1),
            generate_ms=round((finished - started) * 1000, 1),
            finish_reason="stop" if stopped else "length",
        )
