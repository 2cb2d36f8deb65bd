"""Actions that change what is searched need the permission to change documents."""

from __future__ import annotations

import pytest

from apps.documents.models import Document
from tests import support

pytestmark = pytest.mark.django_db

DOCUMENTS = "admin:documents_document_changelist"


def _versions() -> tuple[Document, Document]:
    old = Document.objects.create(
        title="Criteria", filename="criteria.pdf", version=1, status=Document.Status.READY
    )
    new = Document.objects.create(
        title="Criteria",
        filename="criteria.pdf",
        version=2,
        previous_version=old,
        is_current=True,
        status=Document.Status.READY,
    )
    return old, new


def _state() -> list[tuple[int, str, bool]]:
    return list(Document.objects.order_by("pk").values_list("version", "status", "is_current"))


def test_viewing_documents_is_not_enough_to_requeue_or_switch_versions():
    old, _ = _versions()
    failed = Document.objects.create(
        title="Broken", filename="broken.pdf", file="documents/broken.pdf", status="failed"
    )
    before = _state()
    viewer = support.staff_client("documents.view_document")
    offered = support.admin_actions_offered(viewer, DOCUMENTS)
    assert "retry_ingest" not in offered and "make_current" not in offered
    support.admin_action(viewer, DOCUMENTS, "retry_ingest", [failed.pk])
    support.admin_action(viewer, DOCUMENTS, "make_current", [old.pk])
    assert _state() == before

    editor = support.staff_client("documents.view_document", "documents.change_document")
    assert "1 version(s) now searched" in support.admin_action(
        editor, DOCUMENTS, "make_current", [old.pk]
    )
    assert "1 document(s) queued again" in support.admin_action(
        editor, DOCUMENTS, "retry_ingest", [failed.pk]
    )
    assert _state() == [(1, "ready", True), (2, "ready", False), (1, "queued", False)]
