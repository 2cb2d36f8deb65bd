from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.sessions import session_key_digest
from apps.answering import pipeline
from apps.qa import services
from apps.qa.models import Answer
from ml.prompting import DECLINE, FOCUSED_TEMPLATE_VERSION
from tests import support
from tests.apps.qa.conftest import FORKLIFT

pytestmark = pytest.mark.django_db


def _ask(question: str, **kwargs: Any) -> Answer:
    answer = services.question_submit(question=question, user=None, session_key="s1", **kwargs)
    return services.answer_generate(answer_id=answer.pk)


@pytest.mark.usefixtures("library", "default_generator")
def test_an_answer_is_stored_with_everything_needed_to_learn_from_it():
    answer = _ask(FORKLIFT)
    assert answer.status == Answer.Status.DONE, answer.error
    assert answer.text and answer.session_digest == session_key_digest("s1") != "s1"
    assert answer.template_version == FOCUSED_TEMPLATE_VERSION
    assert [m["role"] for m in answer.prompt_messages] == ["system", "user"]
    assert "[1] (UFC 3-410-01" in answer.prompt_messages[1]["content"]
    assert answer.retrieved and {"chunk_id", "score", "similarity", "page", "section"} <= set(
        answer.retrieved[0]
    )
    assert answer.generation_settings["max_new_tokens"] == 40
    assert (answer.model_name, answer.adapter_version) == (
        "SmolLM2-135M-Instruct.Q8_0",
        "base",
    )  # served re-quantized
    assert 0 < answer.retrieve_ms <= answer.first_token_ms <= answer.total_ms
    assert answer.prompt_tokens > 100 and 0 < answer.completion_tokens <= 40
    assert all(c in answer.retrieved for c in answer.citations)
    assert answer.text.rstrip().endswith((".", "!", "?", "]"))  # never cut mid-sentence


@pytest.mark.usefixtures("library", "default_generator")
def test_a_question_the_documents_do_not_cover_is_declined():
    answer = _ask("Who won the football world cup in 1998?")
    assert answer.status == Answer.Status.DONE
    assert answer.declined and answer.text == DECLINE
    assert answer.citations == [] and answer.retrieved  # it still lists what it looked at


@pytest.mark.usefixtures("library", "default_generator")
def test_relevant_pages_with_no_answering_sentence_are_declined_without_generating(settings):
    """The pages retrieved are about air conditioning, but none of their sentences gives a
    SEER rating: the sentence gate declines; with the gate off the model is asked."""
    question = "What minimum SEER rating must a new split-system air conditioner have?"
    settings.ANSWER_MIN_SIMILARITY = 0  # past the retrieval gate
    gated = _ask(question)
    assert gated.status == Answer.Status.DONE
    assert gated.declined and gated.text == DECLINE and gated.model_name == "retrieval-gate"
    assert gated.prompt_messages and gated.retrieved  # what it looked at is kept
    settings.ANSWER_MIN_SENTENCE_SCORE = 0
    asked = _ask(question)
    assert asked.model_name != "retrieval-gate" and asked.completion_tokens


@pytest.mark.usefixtures("library", "default_generator")
def test_given_passages_are_answered_over_instead_of_retrieving(settings):
    """bench/decline_probe.py answers a question over passages it chose: those, and only
    those, are what the prompt shows and the record keeps; the gate still applies."""
    hits = pipeline.retrieve("How must relief air be discharged to the outside?")
    settings.ANSWER_MIN_SIMILARITY = settings.ANSWER_MIN_SENTENCE_SCORE = 0
    record = pipeline.answer_run(question=FORKLIFT, hits=hits)
    assert [r["chunk_id"] for r in record.retrieved] == [h.chunk_id for h in hits]
    assert record.retrieval_query == FORKLIFT and record.model_name != "retrieval-gate"
    settings.ANSWER_MIN_SENTENCE_SCORE = 2  # no sentence scores that: the gate declines
    gated = pipeline.answer_run(question=FORKLIFT, hits=hits)
    assert gated.declined and gated.model_name == "retrieval-gate"


@pytest.mark.parametrize(
    ("question", "message"), [("   ", "Please type a question."), ("x" * 2001, "under 2000")]
)
def test_empty_and_overlong_questions_are_refused(question: str, message: str):
    with pytest.raises(services.InvalidQuestion, match=message):
        services.question_submit(question=question, user=None)
    assert not Answer.objects.exists()


def test_a_double_submit_asks_once():
    first = services.question_submit(question="How warm?", user=None, client_token="tok-1")
    second = services.question_submit(question="How warm?", user=None, client_token="tok-1")
    assert first.pk == second.pk and Answer.objects.count() == 1


@pytest.mark.usefixtures("library", "generator_down")
def test_when_the_generator_is_down_the_question_is_kept_and_the_user_told():
    answer = _ask(FORKLIFT)
    assert answer.status == Answer.Status.FAILED
    assert answer.question == " ".join(FORKLIFT.split())
    assert "unavailable right now" in answer.error and "Your question is saved" in answer.error
    assert services.answer_retry(answer_id=answer.pk)
    assert Answer.objects.get(pk=answer.pk).status == Answer.Status.PENDING


@pytest.mark.usefixtures("library", "default_generator")
def test_a_second_consumer_gets_the_finished_answer_without_generating_again():
    answer = services.question_submit(question=FORKLIFT, user=None)
    first = services.answer_generate(answer_id=answer.pk)
    again = services.answer_generate(answer_id=answer.pk)
    assert (
        again.pk == first.pk and again.text == first.text and again.finished_at == first.finished_at
    )


@pytest.mark.usefixtures("library")
def test_conversations_group_follow_up_questions():
    user = support.make_user("eve", "engineers")
    first = services.question_submit(question="How warm?", user=user)
    follow_up = services.question_submit(
        question="And in offices?", user=user, conversation_id=first.conversation_id
    )
    assert follow_up.conversation_id == first.conversation_id
    other = support.make_user("mallory", "engineers")
    foreign = services.question_submit(
        question="Hi", user=other, conversation_id=first.conversation_id
    )
    assert (
        foreign.conversation_id != first.conversation_id
    )  # nobody writes into someone else's conversation


@pytest.mark.usefixtures("library", "default_generator")
def test_a_follow_up_is_retrieved_with_the_previous_turn():
    first = _ask(FORKLIFT)
    assert first.retrieval_query == first.question  # a conversation's first turn stands alone
    forklift = first.retrieved[0]["chunk_id"]  # 3-5.3.4, 55°F for forklift areas
    alone = [hit.chunk_id for hit in pipeline.retrieve("And the maximum?")]
    assert forklift not in alone

    follow_up = _ask("And the maximum?", conversation_id=first.conversation_id)
    assert follow_up.retrieval_query == f"{first.question} And the maximum?"
    assert follow_up.retrieved[0]["chunk_id"] == forklift
    assert follow_up.prompt_messages[1]["content"].endswith("\n\nQuestion: And the maximum?")

    # A question that stands on its own is retrieved alone, in a conversation or not.
    own = "What safety factor is allowed for sizing heating equipment for morning warm-up?"
    assert pipeline.follow_up_context(own, follow_up.retrieval_query) == ""
    fresh = _ask("And the maximum?")
    assert fresh.conversation_id != first.conversation_id
    assert fresh.retrieval_query == "And the maximum?"
    assert [r["chunk_id"] for r in fresh.retrieved] == alone
