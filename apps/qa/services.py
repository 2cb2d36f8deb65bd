"""Asking: a question becomes an Answer row first, then the answering pipeline fills it.

The row exists before any model runs, so a question is never lost: when the generator is
down the answer is marked failed with the reason and can be retried.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.sessions import session_key_digest
from apps.answering.pipeline import AnswerRecord, answer_events
from apps.judging.services import judge_enqueue
from apps.qa import selectors
from apps.qa.evidence import Evidence, find_evidence, prompt_passages
from apps.qa.models import Answer, Conversation, Origin
from ml.generator import GenerationSettings, GeneratorUnavailable

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
                session_digest=session_key_digest(session_key),
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
    try:
        previous = selectors.previous_retrieval_query(answer)
        for event in answer_events(
            question=answer.question, generation=generation, previous=previous
        ):
            if isinstance(event, AnswerRecord):
                _store(answer, event)
            else:
                yield Token(event)
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


def _store(answer: Answer, record: AnswerRecord) -> None:
    for name, value in record.fields().items():
        setattr(answer, name, value)
    answer.evidence = _evidence(record)
    answer.status = Answer.Status.DONE
    answer.finished_at = timezone.now()
    answer.save()
    if answer.origin == Origin.USER:  # evaluation and sampling judge their own answers
        judge_enqueue(answer.pk)


def _evidence(record: AnswerRecord) -> list[Evidence]:
    """The supporting sentences of each passage the answer cites (none for a decline)."""
    if record.declined or not record.citations:
        return []
    from apps.documents.embedding import get_embedder

    return find_evidence(
        answer=record.text,
        citations=record.citations,
        shown=prompt_passages(record.prompt_messages),
        passages=selectors.chunk_texts([c["chunk_id"] for c in record.citations]),
        embed=get_embedder().embed,
    )


def _wait_for(answer_id: int, timeout: float = 600) -> Answer:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = Answer.objects.get(pk=answer_id)
        if answer.status in {Answer.Status.DONE, Answer.Status.FAILED}:
            return answer
        time.sleep(0.5)
    return Answer.objects.get(pk=answer_id)
