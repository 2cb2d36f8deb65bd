"""SME decisions on the review queues. Each one changes the item's state and records who
decided, when, why and how long they spent on it, in one transaction.

A decision made one item at a time may replace an earlier one (the SME sees it on the
item's page). A bulk action passes ``undecided_only=True``: an item somebody decided in
the meantime, or whose reference holds an SME's own text, is skipped (``AlreadyDecided``),
so a bulk action never overwrites an expert's decision, edit or override."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from apps.feedback.models import Feedback
from apps.judging.models import Judgement
from apps.references.models import Reference
from apps.references.services import reference_from_better_answer
from apps.review.models import Queue, ReviewDecision

# Time on one item beyond this is a reviewer who walked away, not effort.
MAX_SECONDS = 30 * 60


class InvalidDecision(ValueError):
    """A decision that cannot be recorded; the message is for the reviewer."""


class AlreadyDecided(InvalidDecision):
    """A bulk decision on an item that needs a decision of its own; nothing was changed."""


ALREADY_DECIDED = "already decided (open an item to change its decision)"

# What "still to decide" means in each queue (field, value): bulk actions touch only these.
UNDECIDED: dict[Queue, tuple[str, str]] = {
    Queue.JUDGEMENTS: ("review_state", Judgement.Review.UNREVIEWED),
    Queue.NEGATIVE_FEEDBACK: ("triage_state", Feedback.Triage.NEW),
    Queue.BETTER_ANSWERS: ("better_answer_state", Feedback.BetterAnswer.PENDING),
    Queue.SYNTHETIC: ("status", Reference.Status.PENDING),
}


def _check_undecided(queue: Queue, item: object) -> None:
    field, todo = UNDECIDED[queue]
    if getattr(item, field) != todo:
        raise AlreadyDecided(ALREADY_DECIDED)


def _decision(
    *,
    queue: Queue,
    object_id: int,
    action: str,
    reviewer: User,
    seconds: float | None,
    reason: str = "",
    score_before: float | None = None,
    score_after: float | None = None,
) -> ReviewDecision:
    if seconds is not None:
        seconds = round(min(max(seconds, 0.0), MAX_SECONDS), 1)
    return ReviewDecision.objects.create(
        queue=queue,
        object_id=object_id,
        action=action,
        reviewer=reviewer,
        seconds=seconds,
        reason=reason.strip(),
        score_before=score_before,
        score_after=score_after,
    )


def _check_score(score: float) -> float:
    if not 0 <= score <= 5 or round(score * 2) != score * 2:
        raise InvalidDecision("A score is between 0 and 5, in steps of 0.5.")
    return float(score)


@transaction.atomic
def judgement_validate(
    *,
    judgement_id: int,
    reviewer: User,
    score: float | None = None,
    reason: str = "",
    seconds: float | None = None,
    undecided_only: bool = False,
) -> Judgement:
    """Accepts the AI score (``score`` None or equal to it) or overrides it, which needs a
    reason. Deciding again replaces the validated score (never in bulk: an SME's override
    is not turned back into the AI score by ``undecided_only``); every decision is kept."""
    judgement = Judgement.objects.select_for_update().get(pk=judgement_id)
    if undecided_only:
        _check_undecided(Queue.JUDGEMENTS, judgement)
    if judgement.status != Judgement.Status.DONE or judgement.score is None:
        raise InvalidDecision("Only a finished judgement can be validated.")
    if score is None or _check_score(score) == judgement.score:
        judgement.review_state = Judgement.Review.ACCEPTED
        judgement.validated_score = judgement.score
        action = "accept"
    else:
        if not reason.strip():
            raise InvalidDecision("Say why you override the AI score.")
        judgement.review_state = Judgement.Review.OVERRIDDEN
        judgement.validated_score = score
        action = "override"
    judgement.save(update_fields=["review_state", "validated_score"])
    _decision(
        queue=Queue.JUDGEMENTS,
        object_id=judgement.pk,
        action=action,
        reviewer=reviewer,
        seconds=seconds,
        reason=reason,
        score_before=judgement.score,
        score_after=judgement.validated_score,
    )
    return judgement


@transaction.atomic
def feedback_triage(
    *,
    feedback_id: int,
    reviewer: User,
    state: str,
    reason: str = "",
    seconds: float | None = None,
    undecided_only: bool = False,
) -> Feedback:
    if state not in Feedback.Triage.values or state == Feedback.Triage.NEW:
        raise InvalidDecision("Choose confirmed, documents need fixing, or dismissed.")
    feedback = Feedback.objects.select_for_update().get(pk=feedback_id)
    if undecided_only:
        _check_undecided(Queue.NEGATIVE_FEEDBACK, feedback)
    feedback.triage_state = state
    feedback.save(update_fields=["triage_state"])
    _decision(
        queue=Queue.NEGATIVE_FEEDBACK,
        object_id=feedback.pk,
        action=state,
        reviewer=reviewer,
        seconds=seconds,
        reason=reason,
        score_before=feedback.score,
    )
    return feedback


@transaction.atomic
def better_answer_decide(
    *,
    feedback_id: int,
    reviewer: User,
    accept: bool,
    answer_text: str | None = None,
    reason: str = "",
    seconds: float | None = None,
    undecided_only: bool = False,
) -> Feedback:
    """Accepting makes the better answer (as the SME edited it, if they did) a validated
    training reference; rejecting keeps it out of training.

    ``answer_text`` None keeps the text already accepted for this item, if it is accepted
    (an SME's edit survives a second "accept"), and takes the user's text otherwise. In
    bulk (``undecided_only``) an item whose reference holds other text than the user's
    (an SME's edit of an earlier version) is skipped rather than replaced or rejected."""
    feedback = Feedback.objects.select_for_update().get(pk=feedback_id)
    if not feedback.better_answer:
        raise InvalidDecision("This feedback has no better answer.")
    reference = Reference.objects.filter(feedback=feedback).first()
    if undecided_only:
        _check_undecided(Queue.BETTER_ANSWERS, feedback)
        if reference is not None and reference.answer != feedback.better_answer.strip():
            raise AlreadyDecided("an SME accepted an edited text for it before (open it to decide)")
    if accept:
        if answer_text is None:
            if (
                reference is not None
                and reference.status == Reference.Status.VALIDATED
                and feedback.better_answer_state == Feedback.BetterAnswer.ACCEPTED
            ):
                answer_text = reference.answer  # kept
            else:
                answer_text = feedback.better_answer
        reference_from_better_answer(
            feedback_id=feedback.pk, answer_text=answer_text, reviewer=reviewer
        )
        feedback.better_answer_state = Feedback.BetterAnswer.ACCEPTED
    else:
        Reference.objects.filter(feedback=feedback).update(status=Reference.Status.REJECTED)
        feedback.better_answer_state = Feedback.BetterAnswer.REJECTED
    feedback.save(update_fields=["better_answer_state"])
    _decision(
        queue=Queue.BETTER_ANSWERS,
        object_id=feedback.pk,
        action="accept" if accept else "reject",
        reviewer=reviewer,
        seconds=seconds,
        reason=reason,
    )
    return feedback


@transaction.atomic
def synthetic_decide(
    *,
    reference_id: int,
    reviewer: User,
    accept: bool,
    question: str | None = None,
    answer: str | None = None,
    reason: str = "",
    seconds: float | None = None,
    undecided_only: bool = False,
) -> Reference:
    """Validates (optionally corrected) or rejects an LLM-written question/answer pair."""
    from apps.references.services import reembed_question

    reference = Reference.objects.select_for_update().get(pk=reference_id)
    if reference.source != Reference.Source.SYNTHETIC:
        raise InvalidDecision("Only synthetic pairs are reviewed in this queue.")
    if undecided_only:
        _check_undecided(Queue.SYNTHETIC, reference)
    if question is not None and question.strip() and question.strip() != reference.question:
        reference.question = " ".join(question.split())
        reembed_question(reference)
    if answer is not None and answer.strip():
        reference.answer = answer.strip()
    reference.status = Reference.Status.VALIDATED if accept else Reference.Status.REJECTED
    reference.save()
    _decision(
        queue=Queue.SYNTHETIC,
        object_id=reference.pk,
        action="validate" if accept else "reject",
        reviewer=reviewer,
        seconds=seconds,
        reason=reason,
    )
    return reference
