"""The SME review queues in Django admin: who may see them, the decisions and their audit
trail (reviewer, time, reason, seconds spent), bulk actions and filters."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.urls import reverse

from apps.documents.models import Document
from apps.feedback.models import Feedback
from apps.judging.models import Judgement
from apps.references.models import Reference, ReferenceSet
from apps.review import services
from apps.review.models import Queue, ReviewDecision
from tests import support
from tests.apps.review import factories

pytestmark = pytest.mark.django_db

QUEUES = ["judgementtovalidate", "negativefeedback", "betteranswer", "syntheticpair"]


def _url(model: str, view: str = "changelist", *args: object) -> str:
    return reverse(f"admin:review_{model}_{view}", args=args)


def test_smes_see_the_queues_and_engineers_and_plain_staff_do_not(sme_client: Client):
    factories.judgement(4.0)
    index = sme_client.get(reverse("admin:index"))
    assert index.status_code == 200
    for model in QUEUES:
        assert _url(model) in index.content.decode()
        assert sme_client.get(_url(model)).status_code == 200
    # An SME sees the queues but not the rest of admin.
    assert sme_client.get(reverse("admin:auth_user_changelist")).status_code == 403

    engineer = Client()
    engineer.force_login(support.make_user("eve", "engineers"))
    for model in QUEUES:
        response = engineer.get(_url(model))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert engineer.get(reverse("review:analytics")).status_code == 403

    # Being staff is not being an SME: staff enter the admin but not the queues.
    staff = Client()
    staff.force_login(support.make_user("ada", staff=True))
    assert staff.get(reverse("admin:index")).status_code == 200
    assert staff.get(_url("judgementtovalidate")).status_code == 403


def test_accepting_a_judgement_in_bulk_records_reviewer_and_time(sme_client: Client, sme):
    low, high = factories.judgement(1.5), factories.judgement(4.5)
    sme_client.get(_url("judgementtovalidate"))  # the clock starts when the list is shown
    time.sleep(0.2)
    response = sme_client.post(
        _url("judgementtovalidate"),
        {"action": "accept_scores", "_selected_action": [low.pk, high.pk]},
        follow=True,
    )
    assert "2 decided" in response.content.decode()
    low.refresh_from_db()
    assert (low.review_state, low.validated_score) == (Judgement.Review.ACCEPTED, 1.5)
    decisions = ReviewDecision.objects.filter(queue=Queue.JUDGEMENTS).order_by("object_id")
    assert [(d.object_id, d.action, d.reviewer_id) for d in decisions] == [
        (low.pk, "accept", sme.pk),
        (high.pk, "accept", sme.pk),
    ]
    assert all(
        d.seconds is not None and 0.09 <= d.seconds < 30 for d in decisions
    )  # 0.2 s shared by two items


def test_overriding_a_score_needs_a_reason_and_keeps_both_scores(sme_client: Client, sme):
    judgement = factories.judgement(4.5)
    change = _url("judgementtovalidate", "change", judgement.pk)
    page = sme_client.get(change)
    assert "It is 55°F [1]." in page.content.decode()  # the answer under review is shown
    refused = sme_client.post(change, {"decision": "override", "new_score": "2.0", "reason": ""})
    assert refused.status_code == 200
    assert "Say why you override" in refused.content.decode()
    judgement.refresh_from_db()
    assert judgement.review_state == Judgement.Review.UNREVIEWED
    assert not ReviewDecision.objects.exists()

    response = sme_client.post(
        change, {"decision": "override", "new_score": "2.0", "reason": "Wrong temperature."}
    )
    assert response.status_code == 302
    judgement.refresh_from_db()
    assert (judgement.score, judgement.validated_score) == (4.5, 2.0)
    assert judgement.review_state == Judgement.Review.OVERRIDDEN
    decision = ReviewDecision.objects.get()
    assert (decision.action, decision.reason, decision.score_before, decision.score_after) == (
        "override",
        "Wrong temperature.",
        4.5,
        2.0,
    )
    assert decision.reviewer_id == sme.pk and decision.seconds is not None


def test_services_refuse_bad_decisions(sme):
    judgement = factories.judgement(3.0)
    with pytest.raises(services.InvalidDecision, match=r"steps of 0\.5"):
        services.judgement_validate(judgement_id=judgement.pk, reviewer=sme, score=2.3, reason="x")
    with pytest.raises(services.InvalidDecision, match="Say why"):
        services.judgement_validate(judgement_id=judgement.pk, reviewer=sme, score=1.0)
    pending = Judgement.objects.create(answer=factories.answer(), judge_version="x:y:z")
    with pytest.raises(services.InvalidDecision, match="finished judgement"):
        services.judgement_validate(judgement_id=pending.pk, reviewer=sme)
    assert not ReviewDecision.objects.exists()


def test_negative_feedback_is_triaged_and_only_low_ratings_are_queued(sme_client: Client):
    user = support.make_user("eve", "engineers")
    bad = factories.feedback(1, user=user, note="Wrong table")
    factories.feedback(4, user=user)
    listing = sme_client.get(_url("negativefeedback"))
    assert list(listing.context["cl"].queryset) == [bad]
    sme_client.get(_url("negativefeedback"))
    sme_client.post(_url("negativefeedback"), {"action": "documents", "_selected_action": [bad.pk]})
    bad.refresh_from_db()
    assert bad.triage_state == Feedback.Triage.DOCUMENT
    # Decided items leave the to-do view; "All" still shows them.
    assert not list(sme_client.get(_url("negativefeedback")).context["cl"].queryset)
    everything = sme_client.get(_url("negativefeedback") + "?state=all")
    assert list(everything.context["cl"].queryset) == [bad]


def test_an_accepted_better_answer_becomes_a_training_reference(sme_client: Client, sme):
    user = support.make_user("eve", "engineers")
    feedback = factories.feedback(2, user=user, better_answer="Heat to 55°F dry bulb.")
    assert feedback.better_answer_state == Feedback.BetterAnswer.PENDING
    change = _url("betteranswer", "change", feedback.pk)
    sme_client.get(change)
    sme_client.post(
        change, {"decision": "accept", "accepted_text": "Heat to 55 °F (13 °C) dry bulb."}
    )
    reference = Reference.objects.get()
    assert reference.reference_set.name == ReferenceSet.TRAINING
    assert (reference.source, reference.status) == (Reference.Source.USER, "validated")
    assert reference.answer == "Heat to 55 °F (13 °C) dry bulb."
    assert reference.question == feedback.answer.question
    assert reference.question_embedding is not None
    feedback.refresh_from_db()
    assert feedback.better_answer_state == Feedback.BetterAnswer.ACCEPTED

    # Rejecting later takes it out of training; the reference row is kept, marked rejected.
    services.better_answer_decide(feedback_id=feedback.pk, reviewer=sme, accept=False)
    assert Reference.objects.get().status == Reference.Status.REJECTED
    assert ReviewDecision.objects.filter(queue=Queue.BETTER_ANSWERS).count() == 2


def test_synthetic_pairs_are_validated_with_corrections(sme_client: Client):
    training = ReferenceSet.objects.create(name="training")
    pair = Reference.objects.create(
        reference_set=training,
        question="What is the cooling setpoint?",
        answer="78F",
        source=Reference.Source.SYNTHETIC,
        quote="Cooling: 78 °F.",
    )
    imported = Reference.objects.create(
        reference_set=training, question="q?", answer="a", source=Reference.Source.IMPORTED
    )
    listing = sme_client.get(_url("syntheticpair"))
    assert list(listing.context["cl"].queryset) == [pair]  # imported ones are not queued
    change = _url("syntheticpair", "change", pair.pk)
    sme_client.get(change)
    sme_client.post(change, {"decision": "validate", "corrected_answer": "78 °F for cooling."})
    pair.refresh_from_db()
    assert (pair.status, pair.answer) == (Reference.Status.VALIDATED, "78 °F for cooling.")
    assert imported.status == Reference.Status.PENDING


def test_filters_by_band_reviewer_document_and_version(sme_client: Client, sme):
    document = Document.objects.create(title="UFC", filename="ufc.pdf", is_current=True)
    low = factories.judgement(1.0, document_id=document.pk)
    good = factories.judgement(4.5, version="anthropic:claude:rubric-v1")
    services.judgement_validate(judgement_id=good.pk, reviewer=sme)

    def shown(query: str) -> set[int]:
        response = sme_client.get(_url("judgementtovalidate") + "?state=all&" + query)
        return {j.pk for j in response.context["cl"].queryset}

    assert shown("band=low") == {low.pk}
    assert shown("band=good") == {good.pk}
    assert shown(f"reviewer={sme.pk}") == {good.pk}
    assert shown(f"document={document.pk}") == {low.pk}
    assert shown("judge_version__exact=anthropic:claude:rubric-v1") == {good.pk}
    assert shown("q=55") == {low.pk, good.pk}
