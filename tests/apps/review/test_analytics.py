"""The analytics page and the exports, on rows whose figures are known."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client
from django.urls import reverse

from apps.references.services import references_import
from apps.review import selectors, services
from tests import support
from tests.apps.review import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_(sme_client: Client) -> Client:
    return sme_client


def _content(response: object) -> str:
    return b"".join(support.streamed(response)).decode()


def test_user_scores_and_negative_share():
    user = support.make_user("eve", "engineers")
    for score in (1, 2, 2, 3, 4, 5, 5, 5):
        factories.feedback(score, user=user)
    users = selectors.user_score_distribution()
    assert users.counts == {1: 1, 2: 2, 3: 1, 4: 1, 5: 3}
    assert (users.negative, users.neutral, users.positive) == (3, 1, 4)
    assert users.share(users.negative) == pytest.approx(3 / 8)


def test_agreement_per_judge_version_uses_validated_scores_only(sme):
    version = "local:m:local-v1"
    # AI 4.0 -> SME 4.0, AI 2.0 -> SME 1.0, AI 5.0 -> SME 4.5; one left unreviewed.
    for ai, human in ((4.0, None), (2.0, 1.0), (5.0, 4.5)):
        judgement = factories.judgement(ai, version=version)
        reason = "" if human is None else "checked"
        services.judgement_validate(
            judgement_id=judgement.pk, reviewer=sme, score=human, reason=reason
        )
    factories.judgement(3.0, version=version)
    [row] = selectors.agreement_per_version()
    assert row.judge_version == version
    assert row.ai_vs_sme.n == 3
    # |4-4| + |2-1| + |5-4.5| = 1.5 over 3 answers.
    assert row.ai_vs_sme.mae == pytest.approx(0.5)
    assert row.ai_vs_sme.spearman == pytest.approx(1.0)  # same order
    assert 0 < row.ai_vs_sme.kappa < 1


def test_page_shows_charts_tables_and_escapes_document_names(client_: Client, sme):
    user = support.make_user("eve", "engineers")
    factories.feedback(1, user=user)
    factories.feedback(5, user=user)
    factories.judgement(4.0, document="<script>alert(1)</script> UFC")
    factories.judgement(1.5)
    response = client_.get(reverse("review:analytics"))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("<svg") >= 5
    assert "50.0% negative" in page
    assert "2 AI judgements, mean 2.75 of 5" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert 'id="agreement"' in page and "local:all-MiniLM-L6-v2:local-v1" in page


def test_empty_portal_renders(client_: Client):
    page = client_.get(reverse("review:analytics")).content.decode()
    assert "No judgements yet." in page and "0 user ratings" in page


def test_exports_as_csv_and_json_lines(client_: Client, sme):
    references_import(path=support.EVAL, set_name="validation")
    user = support.make_user("eve", "engineers")
    factories.feedback(2, user=user, note='He said "no", twice')
    factories.judgement(3.5)

    rows = list(csv.DictReader(io.StringIO(_content(client_.get("/review/export/feedback.csv")))))
    assert [(r["score"], r["note"]) for r in rows] == [("2", 'He said "no", twice')]

    lines = _content(client_.get("/review/export/references.jsonl")).splitlines()
    assert len(lines) == 40
    first = json.loads(lines[0])
    assert (first["id"], first["set"], first["key_facts"]) == ("s01", "validation", ["10%", "30"])

    judgement_rows = _content(client_.get("/review/export/judgements.jsonl")).splitlines()
    assert json.loads(judgement_rows[0])["score"] == 3.5
    response = client_.get("/review/export/judgements.csv")
    assert response["Content-Disposition"].startswith('attachment; filename="plumbline-judgements-')
    assert client_.get("/review/export/passwords.csv").status_code == 404
    assert client_.get("/review/export/feedback.xml").status_code == 404


def test_exported_references_import_back_unchanged(client_: Client, tmp_path):
    references_import(path=support.EVAL, set_name="validation")
    path = tmp_path / "export.jsonl"
    path.write_text(_content(client_.get("/review/export/references.jsonl")))
    result = references_import(path=path, set_name="validation")
    assert (result.created, result.updated, result.unchanged) == (0, 0, 40)
