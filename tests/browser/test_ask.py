"""A real browser (Debian's Chromium driven by Playwright) against a live portal: log in,
ask, watch the answer stream in, follow its citation to the PDF page, rate it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from apps.feedback.models import Feedback
from apps.qa.models import Answer
from tests import support
from tests.browser.conftest import CHROMIUM

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def test_ask_stream_cite_and_rate(
    live_server, browser_page, settings, base_model_path: Path, small_pdf: bytes, tmp_path: Path
):
    settings.GENERATOR_BACKEND = "llamacpp"
    settings.GENERATION_MAX_NEW_TOKENS = 48
    # UFC 3-410-01's PDF pages 24-26 (the whole document takes half a minute to ingest and
    # the search tests have it): page 2 of this file is page 25, where 3-5.3.4 states 55°F.
    ufc = support.ingest(support.UFC.name, small_pdf)
    support.make_user("eve", "engineers")
    page = browser_page

    page.goto(f"{live_server.url}/")
    page.fill("input[name=username]", "eve")
    page.fill("input[name=password]", "pw-eve")
    page.click("button[type=submit]")
    page.wait_for_url("**/ask/")

    page.fill(
        "textarea[name=question]", "What is the minimum temperature for warehouse forklift areas?"
    )
    page.keyboard.press("Enter")
    page.wait_for_url("**/ask/c/*/**")
    # Tokens arrive before the answer is finished: the live text grows while it streams.
    page.wait_for_function(
        "document.querySelector('.answer-live .text')?.textContent.length > 0", timeout=120_000
    )
    page.wait_for_selector(".resources", timeout=180_000)
    answer = Answer.objects.get()
    assert answer.status == "done", answer.error

    links = page.eval_on_selector_all(
        ".resources a, a.cite-mark", "els => els.map(e => e.getAttribute('href'))"
    )
    assert f"/documents/{ufc.pk}/file#page=2" in links, links
    marks = page.eval_on_selector_all("a.cite-mark", "els => els.map(e => e.getAttribute('href'))")
    cited_pages = {c["page"] for c in answer.citations}
    assert len(marks) == len([m for m in marks if "#page=" in m]) and (not marks or cited_pages)

    # Once streamed, the evidence of each cited passage is shown under the answer, marked.
    assert len(answer.evidence) == len(answer.citations)
    assert page.locator(".evidence-item").count() == len(answer.evidence)
    for item in answer.evidence:
        shown = page.inner_text(f"#evidence-{answer.pk}-{item['number']} blockquote")
        assert shown == " ".join(item["sentences"])

    pdf = page.request.get(f"{live_server.url}/documents/{ufc.pk}/file")
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"

    page.check("input[name=score][value='4']")
    page.click("summary:has-text('Add a better answer or a note')")
    page.fill("textarea[name=note]", "See also 3-5.3.4 on page 25.")
    page.click("button:has-text('Send feedback')")
    page.wait_for_selector("text=your feedback is saved")
    feedback = Feedback.objects.get()
    assert (feedback.answer_id, feedback.score, feedback.note) == (
        answer.pk,
        4,
        "See also 3-5.3.4 on page 25.",
    )
    page.screenshot(path=str(tmp_path / "answer.png"), full_page=True)
    keep = support.REPO / "var" / "test"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / "answer.png", keep / "browser-answer.png")
