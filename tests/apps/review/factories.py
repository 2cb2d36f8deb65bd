"""Rows for the review tests: answers, judgements and feedback as the portal stores them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from apps.feedback.services import feedback_submit
from apps.judging.models import Judgement
from apps.qa.models import Answer, Conversation

UFC = {"number": 1, "chunk_id": 0, "document_id": 0, "document": "UFC 3-410-01", "page": 25}


def answer(
    question: str = "What pressure?", text: str = "It is 55°F [1].", **cited: object
) -> Answer:
    citation = {**UFC, **cited}
    conversation = Conversation.objects.create(title=question)
    return Answer.objects.create(
        conversation=conversation,
        question=question,
        text=text,
        status=Answer.Status.DONE,
        retrieved=[citation],
        citations=[citation],
    )


def judgement(
    score: float, *, version: str = "local:all-MiniLM-L6-v2:local-v1", **cited: Any
) -> Judgement:
    backend, model, prompt = version.split(":")
    return Judgement.objects.create(
        answer=answer(**cited),
        judge_version=version,
        backend=backend,
        model=model,
        prompt_version=prompt,
        status=Judgement.Status.DONE,
        score=score,
        comment=f"Scored {score:g} of 5.",
        inputs={"reference": "It is 55°F."},
    )


def feedback(score: int, *, user: User, better_answer: str = "", note: str = ""):
    return feedback_submit(
        answer_id=answer().pk, user=user, score=score, better_answer=better_answer, note=note
    )
