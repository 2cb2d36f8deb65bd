"""AI judgements of stored answers.

Every answer is judged once per judge version (backend, model and prompt version): the
row is created first, then claimed by a conditional update, so a redelivered task or a
second worker never judges it twice. A failure is recorded with its error and retried
later with backoff; the portal never waits for the judge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from apps.answering.pipeline import passage_texts
from apps.documents.embedding import get_embedder
from apps.judging.judge import get_judge
from apps.judging.models import Judgement
from apps.qa.models import Answer
from apps.references.models import Reference
from apps.references.selectors import reference_for_question
from ml.judging import Judge, JudgeConfigError, JudgeError, JudgeRequest, Verdict

logger = logging.getLogger(__name__)

# How long one judgement may run before another worker may take it over (its worker died).
SINGLE_LEASE = timedelta(minutes=15)


def judge_request(
    *,
    question: str,
    response: str,
    retrieved: list[dict[str, Any]],
    reference: Reference | None,
    custom_id: str = "",
) -> JudgeRequest:
    """The one way an answer (and its reference, if any) becomes what the judge sees: the
    question, the answer, the reference and its key facts, and the passages it was given."""
    return JudgeRequest(
        question=question,
        response=response,
        reference=reference.answer if reference else None,
        key_facts=tuple(reference.key_facts) if reference else (),
        passages=tuple(passage_texts(retrieved)),
        answerable=reference.answerable if reference else True,
        custom_id=custom_id,
    )


def judge_request_for(answer: Answer) -> tuple[JudgeRequest, Reference | None]:
    """A stored answer's judge request, against the validated reference whose question
    matches it (see reference_for_question), else on its passages alone."""
    embedding = get_embedder().embed([answer.question])[0].tolist()
    reference = reference_for_question(
        question=answer.question,
        embedding=embedding,
        min_similarity=settings.JUDGE_REFERENCE_MIN_SIMILARITY,
    )
    request = judge_request(
        question=answer.question,
        response=answer.text,
        retrieved=answer.retrieved,
        reference=reference,
        custom_id=f"answer-{answer.pk}",
    )
    return request, reference


def _inputs(request: JudgeRequest, reference: Reference | None) -> dict[str, Any]:
    return {
        "question": request.question,
        "response": request.response,
        "reference": request.reference,
        "reference_id": reference.pk if reference else None,
        "key_facts": list(request.key_facts),
        "passages": list(request.passages),
        "answerable": request.answerable,
    }


def _claimable() -> Q:
    return (
        Q(status=Judgement.Status.PENDING)
        | Q(status=Judgement.Status.FAILED, attempts__lt=settings.JUDGE_MAX_ATTEMPTS)
        | Q(status=Judgement.Status.RUNNING, lease_until__lt=timezone.now())
    )


def _judgement_row(answer: Answer, judge: Judge) -> Judgement:
    judgement, _ = Judgement.objects.get_or_create(
        answer=answer,
        judge_version=judge.version,
        defaults={
            "backend": judge.backend,
            "model": judge.model,
            "prompt_version": judge.prompt_version,
        },
    )
    return judgement


def _claim(ids: list[int], *, lease: timedelta = SINGLE_LEASE) -> list[int]:
    """Moves claimable rows to running for ``lease``; returns the ids this caller now owns.
    A bulk batch can take hours, so its lease is as long as the batch may run."""
    with transaction.atomic():
        owned = list(
            Judgement.objects.select_for_update(skip_locked=True)
            .filter(_claimable(), pk__in=ids)
            .values_list("pk", flat=True)
        )
        Judgement.objects.filter(pk__in=owned).update(
            status=Judgement.Status.RUNNING,
            lease_until=timezone.now() + lease,
            attempts=F("attempts") + 1,
        )
    return owned


def _record(judgement_id: int, outcome: Verdict | JudgeError, inputs: dict[str, Any]) -> None:
    now = timezone.now()
    if isinstance(outcome, Verdict):
        Judgement.objects.filter(pk=judgement_id).update(
            status=Judgement.Status.DONE,
            score=outcome.score,
            comment=outcome.comment,
            details=outcome.details,
            inputs=inputs,
            error="",
            judged_at=now,
            next_attempt_at=None,
            lease_until=None,
        )
        return
    attempts = Judgement.objects.values_list("attempts", flat=True).get(pk=judgement_id)
    # A bad key or model needs a person; come back much later than for a busy API.
    base = 60 if isinstance(outcome, JudgeConfigError) else 2
    delay = timedelta(minutes=min(base * 2 ** (attempts - 1), 24 * 60))
    Judgement.objects.filter(pk=judgement_id).update(
        status=Judgement.Status.FAILED,
        error=f"{type(outcome).__name__}: {outcome}"[:4000],
        inputs=inputs,
        next_attempt_at=now + delay,
        lease_until=None,
    )
    logger.warning("judgement %s failed (attempt %s): %s", judgement_id, attempts, outcome)


def answer_judge(*, answer_id: int) -> Judgement | None:
    """Judges one finished answer with the configured judge, once per judge version.
    Returns the judgement row (as it stands if someone else owns it), or None when the
    answer is not finished."""
    answer = Answer.objects.filter(pk=answer_id, status=Answer.Status.DONE).first()
    if answer is None:
        return None
    judge = get_judge()
    judgement = _judgement_row(answer, judge)
    if not _claim([judgement.pk]):
        return Judgement.objects.get(pk=judgement.pk)
    inputs: dict[str, Any] = {}
    try:
        request, reference = judge_request_for(answer)
        inputs = _inputs(request, reference)
        if reference is not None:
            Judgement.objects.filter(pk=judgement.pk).update(reference=reference)
        outcome: Verdict | JudgeError = judge.judge(request)
    except JudgeError as exc:
        outcome = exc
    except Exception as exc:
        _record(judgement.pk, JudgeError(f"{type(exc).__name__}: {exc}"), inputs)
        raise
    _record(judgement.pk, outcome, inputs)
    return Judgement.objects.get(pk=judgement.pk)


@dataclass(frozen=True)
class BulkResult:
    judge_version: str
    claimed: int
    done: int
    failed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "judge_version": self.judge_version,
            "claimed": self.claimed,
            "done": self.done,
            "failed": self.failed,
        }


def answers_unjudged(judge_version: str) -> QuerySet[Answer]:
    judged = Judgement.objects.filter(
        answer=OuterRef("pk"), judge_version=judge_version, status=Judgement.Status.DONE
    )
    return Answer.objects.filter(status=Answer.Status.DONE).exclude(Exists(judged))


def answers_judge_bulk(*, limit: int = 1000) -> BulkResult:
    """The nightly pass: judges every finished answer that has no judgement under the
    current judge version, in one bulk request where the backend has one (Anthropic's
    Message Batches API costs half as much as single calls)."""
    judge = get_judge()
    answers = list(answers_unjudged(judge.version).order_by("pk")[:limit])
    rows = {answer.pk: _judgement_row(answer, judge) for answer in answers}
    lease = timedelta(seconds=settings.JUDGE_BATCH_TIMEOUT_SECONDS + 600)
    owned = set(_claim([row.pk for row in rows.values()], lease=lease))
    work = [(answer, rows[answer.pk]) for answer in answers if rows[answer.pk].pk in owned]
    requests: list[JudgeRequest] = []
    inputs: list[dict[str, Any]] = []
    for answer, judgement in work:
        request, reference = judge_request_for(answer)
        if reference is not None:
            Judgement.objects.filter(pk=judgement.pk).update(reference=reference)
        requests.append(request)
        inputs.append(_inputs(request, reference))
    outcomes: list[Verdict | JudgeError]
    try:
        outcomes = judge.judge_many(requests) if requests else []
    except JudgeError as exc:  # the whole batch failed: every item retries later
        outcomes = [exc] * len(requests)
    for (_, judgement), outcome, item_inputs in zip(work, outcomes, inputs, strict=True):
        _record(judgement.pk, outcome, item_inputs)
    done = sum(isinstance(o, Verdict) for o in outcomes)
    return BulkResult(judge.version, len(work), done, len(work) - done)


def judgements_due() -> list[int]:
    """Answer ids whose failed judgement may be tried again now."""
    return list(
        Judgement.objects.filter(
            status=Judgement.Status.FAILED,
            attempts__lt=settings.JUDGE_MAX_ATTEMPTS,
            next_attempt_at__lte=timezone.now(),
        ).values_list("answer_id", flat=True)[:500]
    )


def judge_enqueue(answer_id: int) -> None:
    """Queues the judging of a finished answer once the surrounding transaction commits.
    A broker that is down costs the answer nothing: the nightly pass picks it up."""
    if not settings.JUDGE_ON_ANSWER:
        return
    from kombu.exceptions import OperationalError

    from workers.judging import judge_answer

    def send() -> None:
        try:
            judge_answer.apply_async(
                (answer_id,), retry_policy={"max_retries": 1, "interval_start": 0.2}
            )
        except OperationalError as exc:
            logger.warning("could not queue judging of answer %s: %s", answer_id, exc)

    transaction.on_commit(send)


@transaction.atomic
def rubric_activate(*, rubric_id: int) -> None:
    """Makes one rubric version the one LLM judges use from now on; answers are then judged
    again under the new judge version by the nightly pass."""
    from apps.judging.models import JudgeRubric

    JudgeRubric.objects.select_for_update().filter(is_active=True).update(is_active=False)
    JudgeRubric.objects.filter(pk=rubric_id).update(is_active=True)
