from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.documents.models import Document
from tests import support

pytestmark = pytest.mark.django_db


@pytest.fixture
def engineer_client(client: Client) -> Client:
    client.force_login(support.make_user("eve", "engineers"))
    return client


@pytest.fixture
def sme_client(client: Client) -> Client:
    client.force_login(support.make_user("sam", "smes"))
    return client


@pytest.mark.parametrize(
    "url", ["/", "/documents/", "/documents/search/?q=x", "/documents/upload/", "/admin/"]
)
def test_every_page_needs_a_login(client: Client, url: str):
    response = client.get(url)
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_healthcheck_is_public(client: Client):
    assert client.get("/healthz").json()["database"] == "ok"


def test_engineers_cannot_upload(engineer_client: Client, small_pdf: bytes):
    assert engineer_client.get("/documents/upload/").status_code == 403
    response = engineer_client.post(
        "/documents/upload/", {"files": SimpleUploadedFile("a.pdf", small_pdf)}
    )
    assert response.status_code == 403
    assert not Document.objects.exists()


def test_engineers_cannot_open_admin(engineer_client: Client):
    response = engineer_client.get("/admin/documents/document/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_sme_uploads_and_sees_progress(sme_client: Client, small_pdf: bytes):
    response = sme_client.post(
        "/documents/upload/",
        {"files": SimpleUploadedFile("criteria.pdf", small_pdf), "title": "HVAC criteria"},
    )
    document = Document.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/documents/{document.pk}/"
    assert (document.title, document.status) == ("HVAC criteria", Document.Status.QUEUED)
    progress = sme_client.get(f"/documents/{document.pk}/progress.json").json()
    assert progress["status"] == "queued" and progress["percent"] == 0
    page = sme_client.get(f"/documents/{document.pk}/").content.decode()
    assert "Queued" in page and "progress" in page


def test_bad_upload_shows_the_reason_and_keeps_the_record(sme_client: Client):
    response = sme_client.post(
        "/documents/upload/",
        {"files": SimpleUploadedFile("photo.pdf", b"\x89PNG\r\n\x1a\nxxxx")},
        follow=True,
    )
    assert "its content is a PNG image" in response.content.decode()
    assert Document.objects.get().status == Document.Status.FAILED


def test_several_files_in_one_upload(sme_client: Client, small_pdf: bytes):
    files = [
        SimpleUploadedFile("a.pdf", small_pdf),
        SimpleUploadedFile("b.md", b"# B\n\n## 1.1 Scope\nText.\n"),
    ]
    response = sme_client.post("/documents/upload/", {"files": files})
    assert response.status_code == 302 and response["Location"] == "/documents/"
    assert sorted(Document.objects.values_list("filename", flat=True)) == ["a.pdf", "b.md"]


def test_file_view_serves_the_pdf_inline(engineer_client: Client, small_pdf: bytes):
    document = support.ingest("criteria.pdf", small_pdf)
    response = engineer_client.get(f"/documents/{document.pk}/file")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline")
    assert b"".join(support.streamed(response)) == small_pdf


def test_text_documents_open_at_the_passage(engineer_client: Client):
    document = support.ingest(
        "ada.md", b"# ADA\n\n## 502.2 Vehicle Spaces\nCar spaces shall be 96 inches wide.\n"
    )
    chunk = document.chunks.get()
    html = engineer_client.get(f"/documents/{document.pk}/text").content.decode()
    assert f'id="chunk-{chunk.pk}"' in html and "§ 502.2 Vehicle Spaces" in html


def test_library_lists_versions_and_failures(engineer_client: Client, small_pdf: bytes):
    support.ingest("criteria.pdf", small_pdf)
    support.ingest("broken.pdf", b"%PDF-1.7 nonsense")
    html = engineer_client.get("/documents/").content.decode()
    assert "criteria.pdf" in html and "broken.pdf" in html and "Failed" in html


def test_staff_upload_through_admin(client: Client, small_pdf: bytes):
    client.force_login(_superuser())
    response = client.post(
        "/admin/documents/document/add/",
        {"upload": SimpleUploadedFile("criteria.pdf", small_pdf), "title": ""},
    )
    document = Document.objects.get()
    assert (
        response.status_code == 302
        and f"/admin/documents/document/{document.pk}/change/" in response["Location"]
    )
    assert document.status == Document.Status.QUEUED
    changelist = client.get("/admin/documents/document/?status__exact=queued").content.decode()
    assert "criteria.pdf" in changelist


def _superuser():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", "root@example.invalid", "pw")


OCR_OFF = "OCR is off: scanned pages are not searchable (install tesseract-ocr)."


@pytest.mark.usefixtures("ocr_off")
def test_without_tesseract_the_document_page_says_ocr_is_off(sme_client: Client):
    document = support.ingest("appendix.pdf", support.pdf_pages(support.UFC, [89, 90, 91]))
    page = sme_client.get(f"/documents/{document.pk}/").content.decode()
    assert OCR_OFF in page
    listed = page[page.index('id="pages-without-text"') :].split("</p>")[0]
    assert "2 pages without a text layer" in listed
    assert f"/documents/{document.pk}/file#page=2" in listed and "#page=3" in listed
    assert OCR_OFF in sme_client.get("/documents/upload/").content.decode()


@pytest.mark.usefixtures("ocr_on")
def test_with_tesseract_scanned_pages_are_listed_as_read_by_ocr(sme_client: Client):
    document = support.ingest("appendix.pdf", support.pdf_pages(support.UFC, [24, 91]))
    page = sme_client.get(f"/documents/{document.pk}/").content.decode()
    assert OCR_OFF not in page and 'id="pages-without-text"' not in page
    assert "1 scanned page read by OCR" in page and "#page=2" in page


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_an_oversized_file_is_refused_while_streaming_and_leaves_no_record(
    settings, sme_client: Client, small_pdf: bytes
):
    settings.DOCUMENT_MAX_BYTES = 50_000
    assert len(small_pdf) > 50_000
    files = [
        SimpleUploadedFile("big.pdf", small_pdf),
        SimpleUploadedFile("b.md", b"# B\n\nText.\n"),
    ]
    response = sme_client.post("/documents/upload/", {"files": files}, follow=True)
    assert "“big.pdf” was not accepted: The file is larger than the 0 MB limit." in _messages(
        response
    )
    # No record for the refused file (it never reached the service); the other one is kept.
    assert list(Document.objects.values_list("filename", "status")) == [("b.md", "queued")]


def test_only_oversized_files_go_back_to_the_upload_page(
    settings, sme_client: Client, small_pdf: bytes
):
    settings.DOCUMENT_MAX_BYTES = 50_000
    response = sme_client.post(
        "/documents/upload/", {"files": SimpleUploadedFile("big.pdf", small_pdf)}, follow=True
    )
    assert response.redirect_chain == [("/documents/upload/", 302)]
    assert "larger than the 0 MB limit" in _messages(response)
    assert not Document.objects.exists()


def test_files_over_the_per_upload_cap_are_refused_by_name(settings, sme_client: Client):
    settings.DOCUMENT_UPLOAD_MAX_FILES = 2
    files = [SimpleUploadedFile(f"{n}.md", f"# {n}\n\nText {n}.\n".encode()) for n in "abc"]
    response = sme_client.post("/documents/upload/", {"files": files}, follow=True)
    assert (
        "“c.md” was not accepted: One upload takes at most 2 files; upload it again in "
        "another batch." in _messages(response)
    )
    assert sorted(Document.objects.values_list("filename", flat=True)) == ["a.md", "b.md"]


def test_a_body_larger_than_any_upload_may_be_is_refused_before_it_is_read(
    settings, sme_client: Client
):
    settings.DOCUMENT_MAX_BYTES = 1024 * 1024
    settings.DOCUMENT_UPLOAD_MAX_FILES = 2
    response = sme_client.post(
        "/documents/upload/",
        {"files": SimpleUploadedFile("a.md", b"# A\n\nText.\n")},
        CONTENT_LENGTH=str(300 * 1024 * 1024),  # what the browser announces
    )
    assert response.status_code == 413
    assert "at most 2 files of up to 1 MB each" in _messages(response)
    assert not Document.objects.exists()


def test_the_upload_still_checks_csrf(small_pdf: bytes):
    client = Client(enforce_csrf_checks=True)
    client.force_login(support.make_user("sam", "smes"))
    response = client.post(
        "/documents/upload/", {"files": SimpleUploadedFile("a.md", b"# A\n\nText.\n")}
    )
    assert response.status_code == 403 and not Document.objects.exists()
