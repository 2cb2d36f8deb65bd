"""An expert in a real browser: the analytics page with its charts, then the judgement
queue in admin, overriding an AI score with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.review.models import ReviewDecision
from tests import support
from tests.apps.review import factories
from tests.browser.conftest import CHROMIUM

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def test_an_sme_reads_analytics_and_overrides_a_score(live_server, browser_page):
    sme = support.make_user("sam", "smes")  # an expert who is not staff
    user = support.make_user("eve", "engineers")
    factories.feedback(1, user=user, note="wrong")
    factories.feedback(5, user=user)
    judgement = factories.judgement(4.5)
    page = browser_page

    page.goto(f"{live_server.url}/review/analytics/")
    page.fill("input[name=username]", "sam")
    page.fill("input[name=password]", "pw-sam")
    page.click("button[type=submit]")
    page.wait_for_url("**/review/analytics/")
    assert page.locator("figure.chart svg").count() >= 5
    assert "50.0% negative" in page.inner_text("main")
    page.screenshot(
        path=str(support.REPO / "var" / "test" / "browser-analytics.png"), full_page=True
    )

    page.click("text=Review queues")
    page.click("text=1. AI judgements to validate")
    page.click(f"a[href$='/{judgement.pk}/change/']")
    assert "It is 55°F [1]." in page.inner_text("main")
    page.check("input[name=decision][value=override]")
    page.select_option("select[name=new_score]", "2.0")
    page.fill("textarea[name=reason]", "The answer gives the cooling setpoint.")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    page.screenshot(path=str(support.REPO / "var" / "test" / "browser-queue.png"), full_page=True)

    judgement.refresh_from_db()
    assert (judgement.review_state, judgement.validated_score) == ("overridden", 2.0)
    decision = ReviewDecision.objects.get()
    assert decision.reviewer_id == sme.pk and decision.seconds is not None and decision.seconds > 0
