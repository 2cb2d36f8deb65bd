"""Search over the real demo corpus (UFC 3-410-01 and HUD NSPIRE), ingested once here
(without OCR of the scanned pages)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.test import override_settings

from apps.documents import services
from apps.documents.models import Document
from apps.documents.selectors import search_chunks
from tests import support

pytestmark = pytest.mark.django_db

FORKLIFT = "minimum temperature for warehouse forklift areas"


@pytest.fixture(scope="module", autouse=True)
def corpus(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest
) -> Iterator[dict[str, Document]]:
    # No OCR: the sample questions' pages all have a text layer, and the scanned ones cost
    # most of the ingest (OCR has its own tests in test_services.py).
    with django_db_blocker.unblock(), override_settings(OCR_ENABLED=False):  # type: ignore[attr-defined]
        documents = {
            path.name: support.ingest(path.name, path.read_bytes())
            for path in (support.UFC, support.HUD)
        }
        assert all(d.status == Document.Status.READY for d in documents.values())
        yield documents
        for document in documents.values():
            services.document_delete(document_id=document.pk)


def _eval_questions() -> list[dict[str, object]]:
    rows = [json.loads(line) for line in support.EVAL.read_text().splitlines() if line.strip()]
    return [row for row in rows if row["answerable"]]


def test_forklift_question_cites_ufc_page_25_first():
    first = search_chunks(query=FORKLIFT, k=5)[0]
    assert first.filename == support.UFC.name
    assert (first.page_number, first.page_label, first.section) == (25, "14", "3-5.3.4")
    assert "<mark>" in first.headline_html


def test_gold_page_in_top_5_for_at_least_90_percent_of_sample_questions():
    questions = _eval_questions()
    found = []
    for row in questions:
        pages = {
            (hit.filename, hit.page_number)
            for hit in search_chunks(query=str(row["question"]), k=5)
        }
        found.append((row["document"], row["page"]) in pages)
    share = sum(found) / len(found)
    missed = [row["id"] for row, ok in zip(questions, found, strict=True) if not ok]
    assert share >= 0.90, f"top-5 page hit rate {share:.3f}; missed {missed}"


def test_document_filter(corpus: dict[str, Document]):
    hud = corpus[support.HUD.name]
    hits = search_chunks(query=FORKLIFT, k=5, document_ids=[hud.pk])
    assert hits and {hit.document_id for hit in hits} == {hud.pk}


def test_highlight_escapes_document_html():
    hits = search_chunks(query="<script>alert(1)</script> heating", k=3)
    assert hits and all("<script>" not in hit.headline_html for hit in hits)


def test_queries_with_no_usable_words_return_cleanly():
    assert search_chunks(query="   ", k=5) == []
    assert len(search_chunks(query="the of and", k=5)) == 5  # stop words: vector side only
    assert search_chunks(query="x" * 5000, k=3) is not None


def test_search_command_json_contract(capsys: pytest.CaptureFixture[str]):
    call_command("search", FORKLIFT, "--k", "3", "--json")
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 3
    assert set(results[0]) >= {"document", "page", "section", "score", "text"}
    assert results[0]["page"] == 25 and results[0]["section"] == "3-5.3.4"


def test_search_page_shows_cited_results(client: object):
    user = support.make_user("engineer", "engineers")
    client.force_login(user)  # type: ignore[attr-defined]
    response = client.get("/documents/search/", {"q": FORKLIFT})  # type: ignore[attr-defined]
    assert response.status_code == 200
    html = response.content.decode()
    ufc = Document.objects.get(filename=support.UFC.name)
    assert f'href="/documents/{ufc.pk}/file#page=25"' in html
    assert "p. 25 (printed 14)" in html and "§ 3-5.3.4" in html


def test_search_page_escapes_the_query(client: object):
    client.force_login(support.make_user("engineer", "engineers"))  # type: ignore[attr-defined]
    response = client.get("/documents/search/", {"q": "<script>alert('x')</script>"})  # type: ignore[attr-defined]
    html = response.content.decode()
    assert "<script>alert('x')</script>" not in html
    assert "&lt;script&gt;" in html
