from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from apps.accounts.sessions import session_key_digest
from apps.feedback.models import Feedback, FeedbackRevision
from apps.qa.models import Answer

MAX_TEXT = 10_000


class InvalidFeedback(ValueError):
    """Feedback that cannot be stored; the message is for the user."""


@transaction.atomic
def feedback_submit(
    *,
    answer_id: int,
    user: User,
    score: int,
    better_answer: str = "",
    note: str = "",
    session_key: str = "",
) -> Feedback:
    """Creates or changes the user's rating of an answer. Every change is kept as a
    revision; submitting the same thing twice adds nothing. An SME's triage of the rating
    stays as decided; only a new or changed better answer goes back to the SMEs."""
    if score not in range(1, 6):
        raise InvalidFeedback(
            "Choose one of the five levels, from strongly disagree to strongly agree."
        )
    better_answer, note = better_answer.strip(), note.strip()
    if len(better_answer) > MAX_TEXT or len(note) > MAX_TEXT:
        raise InvalidFeedback(
            f"Please keep the better answer and the note under {MAX_TEXT} characters each."
        )
    # Locking the answer serializes ratings of it: of two first ratings at the same moment
    # (a double click, two tabs) the second waits, then finds and changes the first's row
    # instead of breaking the one-rating-per-user constraint.
    answer = (
        Answer.objects.select_for_update(no_key=True)
        .filter(pk=answer_id, status=Answer.Status.DONE)
        .first()
    )
    if answer is None:
        raise InvalidFeedback("Only a finished answer can be rated.")
    feedback = Feedback.objects.select_for_update().filter(answer=answer, user=user).first()
    if feedback is not None and (feedback.score, feedback.better_answer, feedback.note) == (
        score,
        better_answer,
        note,
    ):
        return feedback
    if feedback is None:
        feedback = Feedback(answer=answer, user=user)
    if better_answer != feedback.better_answer:
        # A new or changed better answer goes (back) to the SMEs; an accepted text stays put.
        feedback.better_answer_state = (
            Feedback.BetterAnswer.PENDING if better_answer else Feedback.BetterAnswer.NONE
        )
    # A changed rating or note never resets triage: the SME judged the bot's answer, which
    # the user's edit does not change, and the edit is kept as a revision. Re-opening would
    # let anyone undo expert work (and churn the queue) by toggling a rating.
    feedback.score, feedback.better_answer, feedback.note = score, better_answer, note
    feedback.session_digest = session_key_digest(session_key)
    feedback.save()
    FeedbackRevision.objects.create(
        feedback=feedback,
        score=score,
        better_answer=better_answer,
        note=note,
        session_digest=feedback.session_digest,
    )
    return feedback
