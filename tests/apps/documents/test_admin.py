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


# Uploads through the admin get the limits of the SME upload page.


def _admin_client(*, enforce_csrf_checks: bool = False):
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(enforce_csrf_checks=enforce_csrf_checks)
    client.force_login(
        get_user_model().objects.create_superuser("root", "root@example.invalid", "pw")
    )
    return client


ADD = "/admin/documents/document/add/"


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_an_oversized_admin_upload_is_refused_while_streaming_and_leaves_no_record(
    settings, small_pdf: bytes
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DOCUMENT_MAX_BYTES = 50_000
    assert len(small_pdf) > 50_000
    response = _admin_client().post(
        ADD, {"upload": SimpleUploadedFile("big.pdf", small_pdf), "title": ""}
    )
    # The form comes back (its file was skipped, not spooled), with the reason.
    assert response.status_code == 200
    assert "“big.pdf” was not accepted: The file is larger than the 0 MB limit." in _messages(
        response
    )
    assert not Document.objects.exists()


def test_an_admin_body_larger_than_one_file_may_be_is_refused_before_it_is_read(settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DOCUMENT_MAX_BYTES = 1024 * 1024
    response = _admin_client().post(
        ADD,
        {"upload": SimpleUploadedFile("a.md", b"# A\n\nText.\n"), "title": ""},
        CONTENT_LENGTH=str(300 * 1024 * 1024),
        follow=True,
    )
    assert response.redirect_chain == [(ADD, 303)]
    assert "a file may be at most 1 MB" in _messages(response)
    assert not Document.objects.exists()


def test_the_admin_upload_still_checks_csrf():
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = _admin_client(enforce_csrf_checks=True)
    response = client.post(ADD, {"upload": SimpleUploadedFile("a.md", b"# A\n\nText.\n")})
    assert response.status_code == 403 and not Document.objects.exists()
    # With the token from the form, the same upload goes through.
    page = client.get(ADD).content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    response = client.post(
        ADD,
        {
            "upload": SimpleUploadedFile("a.md", b"# A\n\nText.\n"),
            "title": "",
            "csrfmiddlewaretoken": token,
        },
    )
    assert response.status_code == 302 and Document.objects.filter(filename="a.md").exists()


def test_two_admin_uploads_in_flight_each_go_to_their_own_document():
    """One ModelAdmin serves every thread: the result of one request's save must not be
    what another request's redirect reads (save A, save B, then respond to A)."""
    from django.contrib import admin
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import RequestFactory

    model_admin = admin.site._registry[Document]
    user = support.make_user("sam", "smes")
    requests, saved = [], []
    for name in ("a.md", "b.md"):
        request = RequestFactory().post(ADD)
        request.user = user
        request.session = {}
        request._messages = FallbackStorage(request)
        form_class = model_admin.get_form(request)
        form = form_class(
            {"title": ""}, {"upload": SimpleUploadedFile(name, f"# {name}\n\nText.\n".encode())}
        )
        assert form.is_valid(), form.errors
        obj = Document()
        model_admin.save_model(request, obj, form, change=False)
        requests.append(request)
        saved.append(obj)
    response = model_admin.response_add(requests[0], saved[0])
    first = Document.objects.get(filename="a.md")
    assert response["Location"] == f"/admin/documents/document/{first.pk}/change/"
