"""Asking: a question becomes an Answer row first, then the answering pipeline fills it.

The row exists before any model runs, so a question is never lost: when the generator is
down the answer is marked failed with the reason and can be retried.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.accounts.sessions import session_key_digest
from apps.answering import engine
from apps.answering.pipeline import AnswerRecord, answer_events
from apps.documents import selectors as document_selectors
from apps.judging.services import judge_enqueue
from apps.qa import selectors
from apps.qa.evidence import Evidence, find_evidence, prompt_passages
from apps.qa.models import Answer, Conversation, Origin
from ml.generator import GenerationSettings, GeneratorUnavailable

UNAVAILABLE = (
    "The answer generator is unavailable right now. Your question is saved; try again in a moment."
)
BUSY = (
    "The answer model is busy with other questions right now. Your question is saved; "
    "try again in a moment."
)
ONE_AT_A_TIME = (
    "You already have an answer being written; wait for it to finish, then try this one "
    "again. Your question is saved."
)
RATE_LIMITED = (
    "You have asked {limit} questions in the last minute, the most one person may. "
    "Your question is saved; try again in a minute."
)
STALLED = (
    "The answer stopped before it finished (no progress for {seconds} s). "
    "Your question is saved; try again."
)
INTERRUPTED = (
    "Answering was interrupted before the answer finished (the connection or the server "
    "closed). Your question is saved; try again."
)
HEARTBEAT_SECONDS = 5


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
    user: User | None,
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
    """Puts a failed answer back to pending, and one stuck generating once the sweep has
    judged it stale; False when it is done or still being written."""
    answers_fail_stale(answer_id=answer_id)
    return bool(
        Answer.objects.filter(pk=answer_id, status=Answer.Status.FAILED).update(
            status=Answer.Status.PENDING, error=""
        )
    )


def answers_fail_stale(*, answer_id: int | None = None, user_id: int | None = None) -> int:
    """Fails generating answers with no progress for ANSWER_STALE_SECONDS (their process
    died, or was cut off mid-answer), with the reason, so they can be retried; all of them,
    or only ``answer_id`` and the answers of ``user_id``. Returns how many."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.ANSWER_STALE_SECONDS)
    stale = Answer.objects.alias(
        progress=Coalesce("heartbeat_at", "started_at", "created_at")
    ).filter(status=Answer.Status.GENERATING, progress__lt=cutoff)
    if answer_id is not None or user_id is not None:
        scope = Q(pk__in=[]) if answer_id is None else Q(pk=answer_id)
        stale = stale.filter(scope if user_id is None else scope | Q(user_id=user_id))
    return stale.update(
        status=Answer.Status.FAILED,
        error=STALLED.format(seconds=settings.ANSWER_STALE_SECONDS),
        finished_at=now,
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
) -> Generator[Token | Finished, None, None]:
    """Retrieves, prompts and generates one pending answer, yielding text as it comes.

    Only the caller that moves the row from pending to generating runs the model; anyone
    else (a second tab, a double submit) waits up to ANSWER_WAIT_SECONDS for that answer
    and gets it whole, or still generating (the client says to reload). A user's second
    answer while one is written, one beyond ANSWER_RATE_PER_MINUTE, and one the model's
    queue has no room for end failed with the reason, the question kept for a retry.
    When the client goes away mid-answer the answer is finished without it and stored.
    """
    answer = Answer.objects.get(pk=answer_id)
    answers_fail_stale(answer_id=answer.pk, user_id=answer.user_id)
    if not _claim(answer):
        yield Finished(_wait_for(answer.pk))
        return
    work = _generate(answer, generation)
    try:
        # Not ``yield from``: that would close ``work`` on GeneratorExit, cutting the answer.
        for token in work:  # noqa: UP028
            yield token
    except GeneratorExit:
        # The client closed the stream: write the rest (bounded by the generation settings)
        # and store it, so a reload shows the answer instead of one stuck generating.
        for _ in work:
            pass
        return
    yield Finished(Answer.objects.get(pk=answer.pk))


def _claim(answer: Answer) -> bool:
    """Moves a pending answer to generating for this caller, unless a limit refuses it
    (then it is failed with the reason). False when someone else has it, or it was refused."""
    now = timezone.now()
    refusal = ""
    if answer.user_id is not None and answer.origin == Origin.USER:
        started = Answer.objects.filter(
            user_id=answer.user_id,
            origin=Origin.USER,
            started_at__gte=now - timedelta(seconds=60),
        ).exclude(pk=answer.pk)
        if started.count() >= settings.ANSWER_RATE_PER_MINUTE:
            refusal = RATE_LIMITED.format(limit=settings.ANSWER_RATE_PER_MINUTE)
    if not refusal:
        try:
            with transaction.atomic():
                claimed = Answer.objects.filter(pk=answer.pk, status=Answer.Status.PENDING).update(
                    status=Answer.Status.GENERATING, started_at=now, heartbeat_at=now
                )
        except IntegrityError:  # qa_one_generating_answer_per_user
            refusal = ONE_AT_A_TIME
        else:
            answer.status, answer.started_at, answer.heartbeat_at = (
                Answer.Status.GENERATING,
                now,
                now,
            )
            return bool(claimed)
    Answer.objects.filter(pk=answer.pk, status=Answer.Status.PENDING).update(
        status=Answer.Status.FAILED, error=refusal, finished_at=now
    )
    return False


class _ClaimLost(Exception):
    """The sweep failed this answer (and maybe a retry claimed it again) while it ran."""


def _generate(answer: Answer, generation: GenerationSettings | None) -> Iterator[Token]:
    """The claimed answer's text as it comes; every path ends it done or failed."""
    try:
        with engine.model_turn() as waited:
            _beat(answer)
            previous = selectors.previous_retrieval_query(answer)
            for event in answer_events(
                question=answer.question, generation=generation, previous=previous
            ):
                if isinstance(event, AnswerRecord):
                    _store(answer, event, queue_ms=round(waited * 1000, 1))
                else:
                    _beat(answer, every=HEARTBEAT_SECONDS)
                    yield Token(event)
    except _ClaimLost:
        return
    except engine.ModelBusy:
        _fail(answer, BUSY)
    except GeneratorUnavailable as exc:
        _fail(answer, f"{UNAVAILABLE} ({exc})")
    except Exception as exc:
        _fail(answer, f"Answering failed ({type(exc).__name__}: {exc}).")
        raise
    except BaseException:  # closed or interrupted mid-answer (GeneratorExit, a worker exiting)
        _fail(answer, INTERRUPTED)
        raise


def _mine(answer: Answer) -> QuerySet[Answer]:
    """The row while this caller's claim holds (the sweep or a retry may have moved it)."""
    return Answer.objects.filter(
        pk=answer.pk, status=Answer.Status.GENERATING, started_at=answer.started_at
    )


def _beat(answer: Answer, *, every: float = 0) -> None:
    now = timezone.now()
    if answer.heartbeat_at is not None and (now - answer.heartbeat_at).total_seconds() < every:
        return
    if not _mine(answer).update(heartbeat_at=now):
        raise _ClaimLost
    answer.heartbeat_at = now


def _fail(answer: Answer, error: str) -> None:
    _mine(answer).update(status=Answer.Status.FAILED, error=error, finished_at=timezone.now())


def _store(answer: Answer, record: AnswerRecord, *, queue_ms: float) -> None:
    fields = record.fields()
    # The wait for the model is part of what the user waited for the first word.
    fields["first_token_ms"] = round(fields["first_token_ms"] + queue_ms, 1)
    fields["total_ms"] = round(fields["total_ms"] + queue_ms, 1)
    stored = _mine(answer).update(
        **fields,
        queue_ms=queue_ms,
        evidence=_evidence(record),
        status=Answer.Status.DONE,
        finished_at=timezone.now(),
    )
    if not stored:
        raise _ClaimLost
    if answer.origin == Origin.USER:  # evaluation and sampling judge their own answers
        judge_enqueue(answer.pk)


def _evidence(record: AnswerRecord) -> list[Evidence]:
    """The supporting sentences of each passage the answer cites (none for a decline)."""
    if record.declined or not record.citations:
        return []
    chunk_ids = [c["chunk_id"] for c in record.citations]
    return find_evidence(
        answer=record.text,
        citations=record.citations,
        shown=prompt_passages(record.prompt_messages),
        passages=selectors.chunk_texts(chunk_ids),
        embed=document_selectors.sentence_embedder(chunk_ids),
    )


def _wait_for(answer_id: int) -> Answer:
    """The answer once someone else has finished it, or as it is after ANSWER_WAIT_SECONDS
    (still generating: the caller tells the user to reload); a stale one is failed here."""
    deadline = time.monotonic() + settings.ANSWER_WAIT_SECONDS
    while True:
        answers_fail_stale(answer_id=answer_id)
        answer = Answer.objects.get(pk=answer_id)
        if answer.status in {Answer.Status.DONE, Answer.Status.FAILED}:
            return answer
        if time.monotonic() >= deadline:
            return answer
        time.sleep(0.5)
