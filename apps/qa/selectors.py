from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Prefetch, QuerySet

from apps.documents.models import Chunk
from apps.feedback.models import Feedback
from apps.qa.models import Answer, Conversation


def conversations_for(user: User) -> QuerySet[Conversation]:
    return Conversation.objects.filter(user=user).order_by("-updated_at")


def conversation_answers(conversation: Conversation, user: User) -> QuerySet[Answer]:
    return conversation.answers.order_by("created_at", "id").prefetch_related(
        Prefetch("feedback", queryset=Feedback.objects.filter(user=user), to_attr="my_feedback")
    )


def answer_for(user: User, answer_id: int) -> Answer | None:
    """An answer the user may see: their own (staff see all)."""
    answers = Answer.objects.select_related("conversation")
    if not user.is_staff:
        answers = answers.filter(user=user)
    return answers.filter(pk=answer_id).first()


def previous_retrieval_query(answer: Answer) -> str:
    """What the turn before ``answer`` in its conversation was retrieved with (its question
    for turns stored before retrieval queries were); "" for a conversation's first turn."""
    previous = (
        Answer.objects.filter(conversation_id=answer.conversation_id, pk__lt=answer.pk)
        .order_by("-pk")
        .values_list("retrieval_query", "question")
        .first()
    )
    return (previous[0] or previous[1]) if previous else ""


def chunk_texts(chunk_ids: list[int]) -> dict[int, str]:
    """The texts of passages by id (deleted ones left out)."""
    return dict(Chunk.objects.filter(pk__in=chunk_ids).values_list("pk", "text"))
