from __future__ import annotations

import mimetypes

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from apps.accounts.decorators import sme_required
from apps.accounts.signed_in import AuthenticatedHttpRequest
from apps.documents import selectors, services, uploads
from apps.documents.forms import SearchForm, UploadForm
from apps.documents.models import Document


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    hits: list[selectors.SearchHit] = []
    query = ""
    if form.is_valid():
        query = form.cleaned_data["q"] or ""
        if query:
            documents = form.cleaned_data["documents"]
            hits = selectors.search_chunks(
                query=query,
                k=form.cleaned_data["k"] or 10,
                document_ids=[d.pk for d in documents] if documents else None,
            )
    return render(
        request,
        "documents/search.html",
        {
            "form": form,
            "query": query,
            "hits": hits,
            "library_empty": not selectors.searchable_documents().exists(),
        },
    )


@require_GET
def library(request: HttpRequest) -> HttpResponse:
    return render(request, "documents/library.html", {"documents": selectors.document_list()})


@csrf_exempt  # checked below, once the upload limits are in place
@sme_required
@require_http_methods(["GET", "POST"])
def upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST":
        if uploads.request_too_large(request):
            messages.error(
                request,
                f"The upload was not accepted: at most {settings.DOCUMENT_UPLOAD_MAX_FILES} "
                f"files of up to {settings.DOCUMENT_MAX_BYTES // (1024 * 1024)} MB each are "
                "taken at once.",
            )
            return _upload_page(request, UploadForm(), status=413)
        # Before the body is read: the limits apply while it streams in.
        return _upload(request, uploads.apply_limits(request))
    return _upload_page(request, UploadForm())


@csrf_protect
def _upload(
    request: AuthenticatedHttpRequest, limits: uploads.DocumentUploadLimits
) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES)
    for name, reason in limits.refused:
        messages.error(request, f"“{name}” was not accepted: {reason}")
    if limits.refused and not request.FILES:
        return redirect("documents:upload")
    if form.is_valid():
        files = form.cleaned_data["files"]
        title = form.cleaned_data["title"] if len(files) == 1 else ""
        results = [
            services.document_upload(
                filename=upload.name, chunks=upload.chunks(), uploaded_by=request.user, title=title
            )
            for upload in files
        ]
        for result in results:
            document = result.document
            if not result.created:
                messages.info(request, f"“{upload_name(document)}” is already in the library.")
            elif document.status == Document.Status.FAILED:
                messages.error(request, f"“{document.filename}” was not accepted: {document.error}")
            elif result.send_failed:
                messages.warning(
                    request,
                    f"“{document.filename}” is queued; its ingestion will start when the "
                    "workers are back.",
                )
            else:
                messages.success(request, f"“{document.filename}” is queued for ingestion.")
        if len(results) == 1 and not limits.refused:
            return redirect("documents:detail", pk=results[0].document.pk)
        return redirect("documents:library")
    return _upload_page(request, form)


def _upload_page(request: HttpRequest, form: UploadForm, *, status: int = 200) -> HttpResponse:
    return render(
        request,
        "documents/upload.html",
        {"form": form, "ocr_enabled": selectors.ocr_enabled()},
        status=status,
    )


def upload_name(document: Document) -> str:
    return f"{document.title} (v{document.version})"


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    document = get_object_or_404(selectors.document_list(), pk=pk)
    return render(
        request,
        "documents/detail.html",
        {
            "document": document,
            "versions": selectors.document_versions(document),
            "pages_without_text": selectors.pages_without_text(document),
            "pages_read_by_ocr": selectors.pages_read_by_ocr(document),
            "ocr_enabled": selectors.ocr_enabled(),
        },
    )


@require_GET
def progress(request: HttpRequest, pk: int) -> JsonResponse:
    document = get_object_or_404(Document, pk=pk)
    return JsonResponse(
        {
            "status": document.status,
            "pages_done": document.pages_done,
            "pages_total": document.pages_total,
            "percent": document.progress_percent,
            "chunks": document.chunks_count,
            "error": document.error,
        }
    )


_CONTENT_TYPES: dict[str, str] = {
    Document.Kind.PDF: "application/pdf",
    Document.Kind.MARKDOWN: "text/markdown; charset=utf-8",
    Document.Kind.TEXT: "text/plain; charset=utf-8",
}


@require_GET
def document_file(request: HttpRequest, pk: int) -> FileResponse:
    """The stored original, shown inline so that ``#page=N`` opens the cited page."""
    document = get_object_or_404(Document, pk=pk)
    if not document.file:
        raise Http404("This document has no stored file.")
    try:
        handle = document.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The stored file is missing.") from exc
    content_type = (
        _CONTENT_TYPES.get(document.kind)
        or mimetypes.guess_type(document.filename)[0]
        or "application/octet-stream"
    )
    response = FileResponse(handle, content_type=content_type, filename=document.filename)
    response["Content-Disposition"] = response["Content-Disposition"].replace(
        "attachment", "inline"
    )
    return response


@require_GET
def text(request: HttpRequest, pk: int) -> HttpResponse:
    """Text documents have no pages to open: show their passages with an anchor each."""
    document = get_object_or_404(Document, pk=pk)
    return render(
        request,
        "documents/text.html",
        {"document": document, "chunks": selectors.document_chunks(document)},
    )
