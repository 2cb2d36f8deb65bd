from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.feedback.models import Feedback, FeedbackRevision
from apps.feedback.services import InvalidFeedback, feedback_submit
from apps.qa.models import Answer, Conversation
from tests import support

pytestmark = pytest.mark.django_db


@pytest.fixture
def answer() -> Answer:
    conversation = Conversation.objects.create(title="q")
    return Answer.objects.create(
        conversation=conversation, question="q", text="55°F [1].", status="done"
    )


def test_feedback_is_stored_and_every_change_kept(answer: Answer):
    user = support.make_user("eve", "engineers")
    feedback_submit(answer_id=answer.pk, user=user, score=2, note="This is specified on page 21")
    feedback_submit(
        answer_id=answer.pk, user=user, score=2, note="This is specified on page 21"
    )  # double submit
    feedback_submit(answer_id=answer.pk, user=user, score=4, better_answer="55°F dry bulb [1].")
    feedback = Feedback.objects.get()
    assert (feedback.score, feedback.better_answer, feedback.note) == (4, "55°F dry bulb [1].", "")
    assert list(FeedbackRevision.objects.values_list("score", flat=True)) == [2, 4]


@pytest.mark.parametrize("score", [0, 6, -1])
def test_scores_outside_one_to_five_are_refused(answer: Answer, score: int):
    with pytest.raises(InvalidFeedback, match="five levels"):
        feedback_submit(answer_id=answer.pk, user=support.make_user("eve"), score=score)
    assert not Feedback.objects.exists()


def test_overlong_text_is_refused(answer: Answer):
    with pytest.raises(InvalidFeedback, match="under 10000"):
        feedback_submit(
            answer_id=answer.pk, user=support.make_user("eve"), score=3, note="x" * 10001
        )


def test_unfinished_answers_cannot_be_rated(answer: Answer):
    Answer.objects.filter(pk=answer.pk).update(status="failed")
    with pytest.raises(InvalidFeedback, match="finished answer"):
        feedback_submit(answer_id=answer.pk, user=support.make_user("eve"), score=3)


@pytest.mark.django_db(transaction=True)
def test_simultaneous_first_ratings_of_one_answer_end_in_one_rating():
    """Two requests rating the same answer for the first time race through feedback_submit
    in two threads (two database connections) released together, round after round."""
    user = support.make_user("eve", "engineers")
    conversation = Conversation.objects.create(title="q")
    rounds = 12
    answers = [
        Answer.objects.create(conversation=conversation, question="q", text="t", status="done")
        for _ in range(rounds)
    ]
    errors: list[BaseException] = []

    def rate(answer: Answer, score: int, start: threading.Barrier) -> None:
        try:
            start.wait()
            feedback_submit(answer_id=answer.pk, user=user, score=score, note=f"from {score}")
        except BaseException as exc:  # reported below, with the round it broke
            errors.append(exc)
        finally:
            connection.close()

    for answer in answers:
        start = threading.Barrier(2)
        threads = [threading.Thread(target=rate, args=(answer, s, start)) for s in (2, 4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert not errors, errors
    for answer in answers:
        feedback = Feedback.objects.get(answer=answer)
        revisions = list(feedback.revisions.values_list("score", flat=True))
        assert sorted(revisions) == [2, 4] and feedback.score == revisions[-1]
