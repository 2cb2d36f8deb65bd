from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils.html import escape

from apps.feedback.models import Feedback
from apps.qa.models import Answer
from apps.qa.presenters import evidence_json
from tests import support
from tests.apps.qa.conftest import FORKLIFT

pytestmark = pytest.mark.django_db


@pytest.fixture
def engineer(client: Client) -> Client:
    client.force_login(support.make_user("eve", "engineers"))
    return client


def _ask(client: Client, question: str, token: str = "t1") -> Answer:
    response = client.post("/ask/", {"question": question, "client_token": token})
    assert response.status_code == 302, response.content[:500]
    return Answer.objects.latest("id")


def test_ask_needs_a_login(client: Client):
    assert client.get("/ask/").status_code == 302


def test_an_empty_question_gets_a_clear_message(engineer: Client):
    response = engineer.post("/ask/", {"question": "  ", "client_token": "t"})
    assert response.status_code == 400 and "Please type a question." in response.content.decode()
    assert not Answer.objects.exists()


def test_double_submit_makes_one_answer(engineer: Client):
    _ask(engineer, "How warm must forklift areas be?", token="same")
    _ask(engineer, "How warm must forklift areas be?", token="same")
    assert Answer.objects.count() == 1


def test_html_in_questions_is_escaped(engineer: Client):
    answer = _ask(engineer, "<script>alert('x')</script> forklift heat?")
    html = engineer.get(f"/ask/c/{answer.conversation_id}/").content.decode()
    assert "<script>alert('x')</script>" not in html and "&lt;script&gt;alert" in html
    assert f'data-stream-url="/ask/answers/{answer.pk}/stream"' in html  # the page will stream it


@pytest.mark.usefixtures("library", "default_generator")
def test_the_answer_streams_as_server_sent_events(engineer: Client):
    answer = _ask(engineer, FORKLIFT)
    response = engineer.get(f"/ask/answers/{answer.pk}/stream")
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join(support.streamed(response)).decode()
    tokens = [
        json.loads(line[6:])["text"]
        for line in body.splitlines()
        if line.startswith('data: {"text"')
    ]
    assert body.count("event: token") >= 2 and body.rstrip().splitlines()[-2] == "event: done"
    done = json.loads(body.rstrip().splitlines()[-1][6:])
    answer.refresh_from_db()
    assert done["status"] == "done" and answer.status == "done"
    assert "".join(tokens).strip()[:20] in answer.text or answer.citation_source == "attributed"
    assert "You can refer to further explanations in the following resources" in done["html"]
    assert f"/documents/{answer.retrieved[0]['document_id']}/file#page=" in done["html"]
    assert 'name="score"' in done["html"] and "Strongly disagree" in done["html"]
    # Evidence: the supporting sentences of each cited passage, highlighted, with its page.
    assert answer.citations and [e["number"] for e in answer.evidence] == [
        c["number"] for c in answer.citations
    ]
    assert done["evidence"] == evidence_json(answer) and done["evidence"][0]["sentences"]
    for item in done["evidence"]:
        assert f"<mark>{escape(item['sentences'][0])}</mark>" in done["html"]
        assert f'[{item["number"]}] <a href="/documents/' in done["html"]


@pytest.mark.usefixtures("library", "default_generator")
def test_without_javascript_the_answer_is_generated_by_a_form(engineer: Client):
    answer = _ask(engineer, FORKLIFT)
    response = engineer.post(f"/ask/answers/{answer.pk}/generate")
    assert response.status_code == 302
    answer.refresh_from_db()
    assert answer.status == "done"
    page = engineer.get(f"/ask/c/{answer.conversation_id}/").content.decode()
    assert "cite-mark" in page and answer.citations and answer.evidence
    # A stored answer shows its evidence on reload, also inside the whole passage.
    sentence = escape(answer.evidence[0]["sentences"][0])
    assert page.count(f"<mark>{sentence}</mark>") == 2 and 'class="evidence-item"' in page


def test_feedback_is_saved_and_html_in_it_escaped(engineer: Client):
    answer = _ask(engineer, "How warm?")
    Answer.objects.filter(pk=answer.pk).update(status="done", text="55°F.")
    response = engineer.post(
        f"/ask/answers/{answer.pk}/feedback",
        {"score": "2", "better_answer": "<b>55°F</b>", "note": "<script>x()</script> see page 21"},
        follow=True,
    )
    assert "your feedback is saved" in response.content.decode()
    feedback = Feedback.objects.get()
    assert (feedback.score, feedback.note) == (2, "<script>x()</script> see page 21")
    html = response.content.decode()
    assert "<script>x()</script>" not in html and "&lt;script&gt;x()&lt;/script&gt;" in html
    assert "you said: disagree" in html


def test_feedback_without_a_level_is_refused(engineer: Client):
    answer = _ask(engineer, "How warm?")
    Answer.objects.filter(pk=answer.pk).update(status="done", text="55°F.")
    response = engineer.post(
        f"/ask/answers/{answer.pk}/feedback", {"note": "no score"}, follow=True
    )
    assert "Choose one of the five levels" in response.content.decode()
    assert not Feedback.objects.exists()


def test_other_users_answers_are_private(engineer: Client, client: Client):
    answer = _ask(engineer, "How warm?")
    other = Client()
    other.force_login(support.make_user("mallory", "engineers"))
    assert other.get(f"/ask/answers/{answer.pk}/stream").status_code == 404
    assert other.get(f"/ask/c/{answer.conversation_id}/").status_code == 404
    assert other.post(f"/ask/answers/{answer.pk}/feedback", {"score": "1"}).status_code == 404


@pytest.mark.usefixtures("library", "generator_down")
def test_api_reports_a_down_generator_and_keeps_the_question(engineer: Client):
    response = engineer.post(
        "/ask/api/answers", json.dumps({"question": FORKLIFT}), content_type="application/json"
    )
    assert response.status_code == 503
    record = response.json()
    assert record["status"] == "failed" and "unavailable" in record["error"]
    assert Answer.objects.get(pk=record["id"]).question


def test_api_rejects_bad_payloads(engineer: Client):
    assert (
        engineer.post("/ask/api/answers", "not json", content_type="application/json").status_code
        == 400
    )
    response = engineer.post(
        "/ask/api/answers", json.dumps({"question": ""}), content_type="application/json"
    )
    assert response.status_code == 400 and "Please type a question." in response.json()["error"]
