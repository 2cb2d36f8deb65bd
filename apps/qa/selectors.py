from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from apps.feedback.models import Feedback
from apps.qa.models import Answer, Conversation


def conversations_for(user: AbstractBaseUser) -> QuerySet[Conversation]:
    return Conversation.objects.filter(user=user).order_by("-updated_at")


def conversation_answers(conversation: Conversation, user: AbstractBaseUser) -> QuerySet[Answer]:
    return conversation.answers.order_by("created_at", "id").prefetch_related(
        Prefetch("feedback", queryset=Feedback.objects.filter(user=user), to_attr="my_feedback")
    )


def answer_for(user: AbstractBaseUser, answer_id: int) -> Answer | None:
    """An answer the user may see: their own (staff see all)."""
    answers = Answer.objects.select_related("conversation")
    if not user.is_staff:
        answers = answers.filter(user=user)
    return answers.filter(pk=answer_id).first()
