"""The transformers backend: the base model plus the served LoRA adapter in this process.

Adapters are hot-swapped with peft's ``load_adapter``/``set_adapter`` under the same turn
that every generation holds, so a request never mixes two adapters and a swap waits for
the request in flight.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

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

if TYPE_CHECKING:
    from transformers import BatchEncoding


class TransformersGenerator:
    def __init__(self, model_path: Path, *, device: str | None = None, keep_adapters: int = 2):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ml.models import default_device, ensure_pad_token

        if not (model_path / "config.json").is_file():
            raise GeneratorUnavailable(f"no model at {model_path} (run: manage.py setup_models)")
        self.device = device or default_device()
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.tokenizer.padding_side = "left"
        # transformers wraps Module.to with functools.wraps, which its types take as unbound.
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        self.model = model.to(self.device)  # type: ignore[arg-type]
        ensure_pad_token(self.tokenizer, self.model)
        self.model.eval()
        self.model_name = model_path.name
        self.keep_adapters = keep_adapters
        self._peft: Any = None
        self._served = adapters.BASE
        self._loaded: list[str] = []
        # One generation (or swap) at a time in this process; swaps go first.
        self._turns = Turns()
        self._vocabulary: NumberVocabulary | None = None  # built at the first grounded answer
        stop_ids = {self.tokenizer.eos_token_id}
        for token in ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"):
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != self.tokenizer.unk_token_id:
                stop_ids.add(token_id)
        stop_ids.discard(self.tokenizer.pad_token_id)
        self._stop_ids = sorted(i for i in stop_ids if i is not None)

    @property
    def served_adapter(self) -> str:
        return self._served

    def activate(self, version: str, path: Path | None, checksum: str | None) -> None:
        if version == adapters.BASE:
            with self._turns.swap():
                self._served = adapters.BASE
            return
        if path is None:
            raise adapters.AdapterRefused(f"adapter {version} has no folder")
        manifest = adapters.verify(path, expected_checksum=checksum)  # hashing: before our turn
        if manifest.version != version:
            raise adapters.AdapterRefused(f"{path} holds adapter {manifest.version}, not {version}")
        with self._turns.swap():
            if self._peft is None:
                from peft import PeftModel

                self._peft = PeftModel.from_pretrained(
                    self.model, str(path), adapter_name=version, is_trainable=False
                )
                self._peft.eval()
            elif version not in self._loaded:
                self._peft.load_adapter(str(path), adapter_name=version, is_trainable=False)
            if version not in self._loaded:
                self._loaded.append(version)
            self._peft.set_adapter(version)
            self._served = version
            # Keep the last few for a quick rollback; drop the rest to bound memory.
            while len(self._loaded) > self.keep_adapters:
                old = self._loaded.pop(0)
                self._peft.delete_adapter(old)

    def _grounding(
        self, messages: list[dict[str, str]], prompt_tokens: int, settings: GenerationSettings
    ) -> Any:
        """The copy bias and the number grounding as transformers' logits processor list
        (None: both off)."""
        if not settings.ground_numbers and not settings.copy_bias:
            return None
        import torch
        from transformers import LogitsProcessor, LogitsProcessorList

        source = grounding_text(messages)
        processors: list[LogitsProcessor] = []
        if settings.copy_bias:
            encode = self.tokenizer
            openings = [
                ids[0]
                for sentence in first_passage_sentences(messages)
                if (ids := encode(sentence, add_special_tokens=False)["input_ids"])
            ]
            copying = CopyBias(
                encode(copy_source(messages), add_special_tokens=False)["input_ids"],
                prompt_tokens,
                bias=settings.copy_bias,
                openings=openings,
                opening_bias=settings.first_passage_bias,
            )

            class Copied(LogitsProcessor):
                def __call__(self, input_ids: Any, scores: Any) -> Any:
                    row = scores[0].float().cpu().numpy()
                    biased = copying(input_ids[0].tolist(), row)
                    if biased is row:
                        return scores
                    return torch.from_numpy(biased).to(scores.device, scores.dtype)[None, :]

            processors.append(Copied())
        if settings.ground_numbers:
            if self._vocabulary is None:
                texts = [str(self.tokenizer.decode([t])) for t in range(len(self.tokenizer))]
                self._vocabulary = NumberVocabulary.from_texts(texts)
            grounding = NumberGrounding(
                self._vocabulary,
                source,
                prompt_tokens,
                preferred=first_passage_text(messages),
                prefer_bias=settings.first_passage_bias,
            )

            class Grounded(LogitsProcessor):
                def __call__(self, input_ids: Any, scores: Any) -> Any:
                    ids = input_ids[0, prompt_tokens:].tolist()
                    allowed = grounding.allowed(ids, int(scores.shape[-1]))
                    if allowed is not None:
                        blocked = torch.from_numpy(~allowed).to(scores.device)
                        scores = scores.masked_fill(blocked, float("-inf"))
                    if grounding.prefer_bias:
                        row = scores[0].float().cpu().numpy()
                        favoured = grounding.favoured(ids, row)
                        if favoured is not None:
                            bonus = torch.from_numpy(favoured).to(scores.device)
                            scores = scores + bonus.to(scores.dtype) * grounding.prefer_bias
                    return scores

            processors.append(Grounded())
        return LogitsProcessorList(processors)

    def stream(
        self, messages: list[dict[str, str]], settings: GenerationSettings
    ) -> Iterator[str | GenerationResult]:
        import torch
        from transformers import TextIteratorStreamer

        # return_dict=True: a BatchEncoding, which the method's return type does not single out.
        encoded = cast(
            "BatchEncoding",
            self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            ),
        )
        input_ids = encoded["input_ids"].to(self.device)
        attention_mask = encoded["attention_mask"].to(self.device)
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300
        )
        output: dict[str, Any] = {}
        with self._turns.generation():
            adapter = self._served
            model = self._peft if self._peft is not None else self.model
            disable = (
                self._peft.disable_adapter()
                if self._peft is not None and adapter == adapters.BASE
                else contextlib.nullcontext()
            )

            def run() -> None:
                try:
                    with torch.inference_mode(), disable:
                        output["ids"] = model.generate(
                            input_ids=input_ids,
                            attention_mask=attention_mask,
                            max_new_tokens=settings.max_new_tokens,
                            do_sample=settings.temperature > 0,
                            temperature=settings.temperature if settings.temperature > 0 else None,
                            top_p=settings.top_p if settings.temperature > 0 else None,
                            repetition_penalty=settings.repetition_penalty,
                            eos_token_id=self._stop_ids,
                            pad_token_id=self.tokenizer.pad_token_id,
                            streamer=streamer,
                            logits_processor=self._grounding(
                                messages, int(input_ids.shape[1]), settings
                            ),
                        )
                except BaseException as exc:  # handed to the consumer below
                    output["error"] = exc
                    streamer.end()

            started = time.perf_counter()
            first_token: float | None = None
            pieces: list[str] = []
            worker = threading.Thread(target=run, name="generate", daemon=True)
            worker.start()
            try:
                for piece in streamer:
                    if not piece:
                        continue
                    if first_token is None:
                        first_token = time.perf_counter()
                    pieces.append(piece)
                    yield piece
            finally:
                # Even when the consumer stops early, finish generating before giving up
                # the turn: the next request must not start on a busy model.
                worker.join()
            if "error" in output:
                raise GeneratorUnavailable(f"generation failed: {output['error']}") from output[
                    "error"
                ]
            finished = time.perf_counter()
        prompt_tokens = int(input_ids.shape[1])
        completion = output["ids"][0][prompt_tokens:]
        completion_tokens = int(completion.shape[0])
        stopped = completion_tokens > 0 and int(completion[-1]) in self._stop_ids
        yield GenerationResult(
            text="".join(pieces),
            model=self.model_name,
            adapter=adapter,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            first_token_ms=round(((first_token or finished) - started) * 1000, 1),
            generate_ms=round((finished - started) * 1000, 1),
            finish_reason="stop"
            if stopped or completion_tokens < settings.max_new_tokens
            else "length",
        )
