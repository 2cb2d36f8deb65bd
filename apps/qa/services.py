"""Asking: a question becomes an Answer row first, then retrieval and generation fill it.

The row exists before any model runs, so a question is never lost: when the generator is
down the answer is marked failed with the reason and can be retried.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.answering.engine import get_generator
from apps.documents.models import Chunk
from apps.documents.selectors import SearchHit, search_chunks
from apps.judging.services import judge_enqueue
from apps.qa.models import Answer, Conversation, Origin
from ml.generator import GenerationResult, GenerationSettings, GeneratorUnavailable
from ml.prompting import (
    DECLINE,
    TEMPLATE_VERSION,
    Passage,
    build_messages,
    cited_numbers,
    is_decline,
    split_sentences,
    strip_invalid_citations,
    trim_to_sentence,
)

ATTRIBUTION_MIN_SIMILARITY = 0.45
UNAVAILABLE = (
    "The answer generator is unavailable right now. Your question is saved; try again in a moment."
)


class InvalidQuestion(ValueError):
    """A question that cannot be asked; the message is for the user."""


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Finished:
    answer: Answer


def question_submit(
    *,
    question: str,
    user: AbstractBaseUser | None,
    session_key: str = "",
    conversation_id: int | None = None,
    client_token: str | None = None,
    origin: str = "user",
) -> Answer:
    """Stores a question as a pending Answer. The same ``client_token`` twice (a double
    submit) returns the first Answer instead of asking again."""
    question = " ".join(question.split())
    if not question:
        raise InvalidQuestion("Please type a question.")
    if len(question) > settings.QUESTION_MAX_CHARS:
        raise InvalidQuestion(
            f"That question is {len(question)} characters long; please keep it under {settings.QUESTION_MAX_CHARS}."
        )
    if client_token:
        existing = Answer.objects.filter(client_token=client_token).first()
        if existing is not None:
            return existing
    owner = user if user is not None and user.is_authenticated else None
    try:
        with transaction.atomic():
            conversation = None
            if conversation_id is not None:
                conversation = Conversation.objects.filter(pk=conversation_id, user=owner).first()
            if conversation is None:
                conversation = Conversation.objects.create(user=owner, title=question[:200])
            else:
                conversation.save(update_fields=["updated_at"])
            return Answer.objects.create(
                conversation=conversation,
                user=owner,
                session_key=session_key,
                client_token=client_token or None,
                question=question,
                origin=origin,
            )
    except IntegrityError:  # the same token submitted twice at the same moment
        return Answer.objects.get(client_token=client_token)


def answer_retry(*, answer_id: int) -> bool:
    return bool(
        Answer.objects.filter(pk=answer_id, status=Answer.Status.FAILED).update(
            status=Answer.Status.PENDING, error=""
        )
    )


def answer_generate(*, answer_id: int, generation: GenerationSettings | None = None) -> Answer:
    """Runs an answer to completion without streaming (command line, API, no-JS form,
    evaluation and sampling, which pass their own generation settings)."""
    for event in answer_stream(answer_id=answer_id, generation=generation):
        if isinstance(event, Finished):
            return event.answer
    return Answer.objects.get(pk=answer_id)


def answer_stream(
    *, answer_id: int, generation: GenerationSettings | None = None
) -> Iterator[Token | Finished]:
    """Retrieves, prompts and generates one pending answer, yielding text as it comes.

    Only the caller that moves the row from pending to generating runs the model; anyone
    else (a second tab, a double submit) waits for that answer and gets it whole.
    """
    claimed = Answer.objects.filter(pk=answer_id, status=Answer.Status.PENDING).update(
        status=Answer.Status.GENERATING, started_at=timezone.now()
    )
    if not claimed:
        yield Finished(_wait_for(answer_id))
        return
    answer = Answer.objects.get(pk=answer_id)
    started = time.perf_counter()
    try:
        hits = search_chunks(query=answer.question, k=settings.ANSWER_PASSAGES)
        retrieve_ms = (time.perf_counter() - started) * 1000
        passages = passages_for(hits)
        answer.retrieved = [_hit_record(number, hit) for number, hit in enumerate(hits, start=1)]
        answer.retrieve_ms = round(retrieve_ms, 1)
        answer.template_version = TEMPLATE_VERSION
        messages = build_messages(answer.question, passages)
        answer.prompt_messages = messages
        gen_settings = generation or GenerationSettings(
            max_new_tokens=settings.GENERATION_MAX_NEW_TOKENS
        )
        answer.generation_settings = gen_settings.as_dict()
        if not hits or hits[0].similarity < settings.ANSWER_MIN_SIMILARITY:
            # Nothing relevant was found: say so instead of letting the model improvise.
            yield Token(DECLINE)
            _finish(answer, text=DECLINE, passages=passages, result=None, started=started)
        else:
            generator = get_generator()
            result: GenerationResult | None = None
            for event in generator.stream(messages, gen_settings):
                if isinstance(event, GenerationResult):
                    result = event
                else:
                    yield Token(event)
            assert result is not None
            _finish(answer, text=result.text, passages=passages, result=result, started=started)
    except GeneratorUnavailable as exc:
        Answer.objects.filter(pk=answer.pk).update(
            status=Answer.Status.FAILED, error=f"{UNAVAILABLE} ({exc})", finished_at=timezone.now()
        )
    except Exception as exc:
        Answer.objects.filter(pk=answer.pk).update(
            status=Answer.Status.FAILED,
            error=f"Answering failed ({type(exc).__name__}: {exc}).",
            finished_at=timezone.now(),
        )
        raise
    yield Finished(Answer.objects.get(pk=answer.pk))


def _wait_for(answer_id: int, timeout: float = 600) -> Answer:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = Answer.objects.get(pk=answer_id)
        if answer.status in {Answer.Status.DONE, Answer.Status.FAILED}:
            return answer
        time.sleep(0.5)
    return Answer.objects.get(pk=answer_id)


def passages_for(hits: list[SearchHit]) -> list[Passage]:
    """Search hits as the numbered passages of a prompt."""
    return [
        Passage(
            number=number,
            chunk_id=hit.chunk_id,
            document=hit.document_title,
            page=hit.page_number if hit.kind == "pdf" else None,
            section=hit.section,
            text=hit.text,
        )
        for number, hit in enumerate(hits, start=1)
    ]


def _hit_record(number: int, hit: SearchHit) -> dict[str, Any]:
    return {
        "number": number,
        "chunk_id": hit.chunk_id,
        "document_id": hit.document_id,
        "document": hit.document_title,
        "kind": hit.kind,
        "page": hit.page_number,
        "page_label": hit.page_label,
        "section": hit.section,
        "score": round(hit.score, 6),
        "similarity": round(hit.similarity, 4),
        "vector_rank": hit.vector_rank,
        "text_rank": hit.text_rank,
    }


def _finish(
    answer: Answer,
    *,
    text: str,
    passages: list[Passage],
    result: GenerationResult | None,
    started: float,
) -> None:
    text = strip_invalid_citations(trim_to_sentence(text), len(passages)) or DECLINE
    declined = is_decline(text)
    numbers = cited_numbers(text, len(passages))
    source = "model"
    if not numbers and not declined and passages:
        text, numbers = _attribute(text, passages)
        source = "attributed" if numbers else ""
    by_number = {record["number"]: record for record in answer.retrieved}
    answer.text = text
    answer.declined = declined
    answer.citations = [by_number[n] for n in numbers if n in by_number]
    answer.citation_source = source if numbers else ""
    if result is not None:
        answer.model_name = result.model
        answer.adapter_version = result.adapter
        answer.first_token_ms = round(answer.retrieve_ms + result.first_token_ms, 1)
        answer.generate_ms = result.generate_ms
        answer.prompt_tokens = result.prompt_tokens
        answer.completion_tokens = result.completion_tokens
        answer.finish_reason = result.finish_reason
    else:
        answer.model_name, answer.adapter_version = "retrieval-gate", ""
        answer.first_token_ms = answer.retrieve_ms
    answer.total_ms = round((time.perf_counter() - started) * 1000, 1)
    answer.status = Answer.Status.DONE
    answer.finished_at = timezone.now()
    answer.save()
    if answer.origin == Origin.USER:  # evaluation and sampling judge their own answers
        judge_enqueue(answer.pk)


def _attribute(text: str, passages: list[Passage]) -> tuple[str, list[int]]:
    """Adds [n] after each sentence that closely matches passage n (small models often
    answer correctly but forget to cite). Sentences that match nothing stay unmarked."""
    from apps.documents.embedding import get_embedder

    sentences = split_sentences(text)
    if not sentences:
        return text, []
    stored = dict(
        Chunk.objects.filter(pk__in=[p.chunk_id for p in passages]).values_list("pk", "embedding")
    )
    matrix = np.array([stored[p.chunk_id] for p in passages], dtype=np.float32)
    vectors = get_embedder().embed([s.strip() for s in sentences])
    similarity = vectors @ matrix.T
    marked: list[str] = []
    numbers: list[int] = []
    for sentence, row in zip(sentences, similarity, strict=True):
        best = int(row.argmax())
        if row[best] >= ATTRIBUTION_MIN_SIMILARITY:
            number = passages[best].number
            stripped = sentence.rstrip()
            end = stripped[-1] if stripped[-1] in ".!?" else ""
            body = stripped[:-1] if end else stripped
            sentence = f"{body} [{number}]{end}" + sentence[len(stripped) :]
            if number not in numbers:
                numbers.append(number)
        marked.append(sentence)
    return "".join(marked).strip(), numbers
