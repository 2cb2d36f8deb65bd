"""Bulk actions never overwrite an expert: decided items are skipped and counted, SME
overrides and edited references are kept, and reopening an item shows what was decided."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from apps.feedback.models import Feedback
from apps.feedback.services import feedback_submit
from apps.judging.models import Judgement
from apps.references.models import Reference, ReferenceSet
from apps.review import services
from apps.review.models import Queue, ReviewDecision
from tests import support
from tests.apps.review import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def user() -> User:
    return support.make_user("eve", "engineers")


def _bulk(client: Client, model: str, action: str, ids: list[int]) -> str:
    url = reverse(f"admin:review_{model}_changelist") + "?state=all"  # decided items shown
    client.get(url)
    response = client.post(url, {"action": action, "_selected_action": ids}, follow=True)
    return " ".join(str(m) for m in response.context["messages"])


def _synthetic(question: str) -> Reference:
    return Reference.objects.create(
        reference_set=ReferenceSet.objects.get_or_create(name="training")[0],
        question=question,
        answer="78 °F.",
        source=Reference.Source.SYNTHETIC,
    )


# Each case: (queue page, bulk action, an undecided item, a decided one, its state now).
Case = tuple[str, str, int, int, Callable[[], Any]]


def _overridden(sme: User, user: User) -> Case:
    judgement = factories.judgement(4.5)
    services.judgement_validate(judgement_id=judgement.pk, reviewer=sme, score=1.0, reason="No")
    rows = Judgement.objects.filter(pk=judgement.pk).values_list("review_state", "validated_score")
    fresh = factories.judgement(3.0)
    return "judgementtovalidate", "accept_scores", fresh.pk, judgement.pk, rows.get


def _triaged(sme: User, user: User) -> Case:
    feedback = factories.feedback(1, user=user)
    services.feedback_triage(feedback_id=feedback.pk, reviewer=sme, state="confirmed")
    rows = Feedback.objects.filter(pk=feedback.pk).values_list("triage_state", flat=True)
    fresh = factories.feedback(2, user=user)
    return "negativefeedback", "dismiss", fresh.pk, feedback.pk, rows.get


def _edited(sme: User, user: User) -> Case:
    feedback = factories.feedback(1, user=user, better_answer="55F")
    services.better_answer_decide(
        feedback_id=feedback.pk, reviewer=sme, accept=True, answer_text="55 °F dry bulb [1]."
    )
    rows = Reference.objects.filter(feedback=feedback).values_list(
        "feedback__better_answer_state", "answer", "status"
    )
    fresh = factories.feedback(2, user=user, better_answer="It is 55 °F.")
    return "betteranswer", "accept", fresh.pk, feedback.pk, rows.get


def _rejected(sme: User, user: User) -> Case:
    pair = _synthetic("Cooling setpoint?")
    services.synthetic_decide(reference_id=pair.pk, reviewer=sme, accept=False)
    rows = Reference.objects.filter(pk=pair.pk).values_list("status", "answer")
    fresh = _synthetic("Heating setpoint?")
    return "syntheticpair", "validate", fresh.pk, pair.pk, rows.get


@pytest.mark.parametrize("make", [_overridden, _triaged, _edited, _rejected])
def test_bulk_actions_skip_decided_items_and_say_so(make, sme_client: Client, sme, user):
    model, action, fresh, decided, state = make(sme, user)
    before, decisions = state(), ReviewDecision.objects.count()
    shown = _bulk(sme_client, model, action, [fresh, decided])
    assert "1 decided" in shown and "1 skipped: already decided" in shown
    assert state() == before
    assert ReviewDecision.objects.count() == decisions + 1  # only the fresh item's
    latest = ReviewDecision.objects.first()
    assert latest is not None and latest.object_id == fresh


def test_a_bulk_decision_on_an_item_decided_meanwhile_changes_nothing(sme):
    judgement = factories.judgement(4.5)
    services.judgement_validate(judgement_id=judgement.pk, reviewer=sme, score=1.0, reason="No")
    with pytest.raises(services.AlreadyDecided):
        services.judgement_validate(judgement_id=judgement.pk, reviewer=sme, undecided_only=True)
    judgement.refresh_from_db()
    assert (judgement.review_state, judgement.validated_score) == ("overridden", 1.0)


def test_an_accepted_edit_survives_accepting_again(sme_client: Client, sme, user):
    feedback = factories.feedback(1, user=user, better_answer="55F")
    services.better_answer_decide(
        feedback_id=feedback.pk, reviewer=sme, accept=True, answer_text="55 °F dry bulb [1]."
    )
    # Accepting again without a text keeps the SME's edit, not the user's raw text.
    services.better_answer_decide(feedback_id=feedback.pk, reviewer=sme, accept=True)
    assert Reference.objects.get().answer == "55 °F dry bulb [1]."
    # The item's page opens on the accepted text, so saving it again keeps the edit too.
    page = sme_client.get(reverse("admin:review_betteranswer_change", args=[feedback.pk]))
    assert page.context["adminform"].form.initial["accepted_text"] == "55 °F dry bulb [1]."
    assert "55 °F dry bulb [1]." in page.content.decode()


def test_a_revised_better_answer_does_not_replace_an_sme_edit_in_bulk(
    sme_client: Client, sme, user
):
    feedback = factories.feedback(1, user=user, better_answer="55F")
    services.better_answer_decide(
        feedback_id=feedback.pk, reviewer=sme, accept=True, answer_text="55 °F dry bulb [1]."
    )
    feedback_submit(answer_id=feedback.answer_id, user=user, score=1, better_answer="56F")
    assert Feedback.objects.get().better_answer_state == Feedback.BetterAnswer.PENDING
    for action in ("accept", "reject"):
        shown = _bulk(sme_client, "betteranswer", action, [feedback.pk])
        assert "0 decided" in shown and "edited text" in shown
        assert Reference.objects.values_list("answer", "status").get() == (
            "55 °F dry bulb [1].",
            Reference.Status.VALIDATED,
        )


def test_an_overridden_judgement_opens_on_its_override(sme_client: Client, sme):
    judgement = factories.judgement(4.5)
    services.judgement_validate(
        judgement_id=judgement.pk, reviewer=sme, score=2.0, reason="Wrong temperature."
    )
    change = reverse("admin:review_judgementtovalidate_change", args=[judgement.pk])
    form = sme_client.get(change).context["adminform"].form
    assert (form.initial["decision"], form.initial["new_score"]) == ("override", "2.0")
    # Saving the page as it opened keeps the SME's score.
    sme_client.post(change, {k: form.initial[k] for k in ("decision", "new_score", "reason")})
    judgement.refresh_from_db()
    assert (judgement.review_state, judgement.validated_score) == ("overridden", 2.0)


def test_a_changed_rating_keeps_the_triage_decision(sme, user):
    feedback = factories.feedback(1, user=user, note="Wrong table")
    services.feedback_triage(feedback_id=feedback.pk, reviewer=sme, state="confirmed")
    feedback_submit(answer_id=feedback.answer_id, user=user, score=2, note="Table 3, not 2")
    feedback.refresh_from_db()
    assert (feedback.score, feedback.triage_state) == (2, Feedback.Triage.CONFIRMED)
    assert feedback.revisions.count() == 2
    assert ReviewDecision.objects.filter(queue=Queue.NEGATIVE_FEEDBACK).count() == 1
