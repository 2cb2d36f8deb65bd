from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.csrf import csrf_protect

from apps.accounts.signed_in import signed_in_user
from apps.documents import services, uploads
from apps.documents.models import Chunk, Document, Page

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups


class DocumentUploadForm(forms.ModelForm):
    upload = forms.FileField(help_text="PDF, Markdown or plain text.", allow_empty_file=True)

    class Meta:
        model = Document
        fields = ["title"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["title"].required = False


class PageInline(admin.TabularInline):
    model = Page
    extra = 0
    can_delete = False
    fields = ("number", "label", "char_count", "has_text_layer", "ocr")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "filename",
        "version",
        "is_current",
        "status_badge",
        "progress",
        "pages_total",
        "pages_without_text",
        "chunks_count",
        "uploaded_by",
        "created_at",
    ]
    list_filter = ["status", "is_current", "kind", "created_at"]
    search_fields = ["title", "filename", "sha256", "error"]
    date_hierarchy = "created_at"
    list_select_related = ["uploaded_by"]
    actions = ["retry_ingest", "make_current"]
    readonly_fields = [
        "filename",
        "kind",
        "sha256",
        "size_bytes",
        "file",
        "version",
        "previous_version",
        "is_current",
        "status",
        "error",
        "pages_total",
        "pages_done",
        "pages_without_text",
        "chunks_count",
        "uploaded_by",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
    ]
    inlines = [PageInline]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        # CSRF-exempt where the URL is wired (below), so that nothing reads the body before
        # the upload limits are in place; the token is then checked as usual.
        if request.method == "POST":
            if uploads.request_too_large(request, max_files=1):
                limit_mb = settings.DOCUMENT_MAX_BYTES // (1024 * 1024)
                self.message_user(
                    request,
                    f"The upload was not accepted: a file may be at most {limit_mb} MB.",
                    messages.ERROR,
                )
                return HttpResponseRedirect(request.path, status=303)
            uploads.apply_limits(request, max_files=1)
        return self._checked_add_view(request, form_url, extra_context)

    add_view.csrf_exempt = True  # type: ignore[attr-defined]

    @method_decorator(csrf_protect)
    def _checked_add_view(
        self, request: HttpRequest, form_url: str, extra_context: dict | None
    ) -> HttpResponse:
        request.FILES  # noqa: B018 - reads the body now, through the limits
        for handler in request.upload_handlers:
            if isinstance(handler, uploads.DocumentUploadLimits):
                for name, reason in handler.refused:
                    self.message_user(
                        request, f"“{name}” was not accepted: {reason}", messages.ERROR
                    )
        return super().add_view(request, form_url, extra_context)

    def get_form(
        self, request: HttpRequest, obj: Document | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = DocumentUploadForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Document | None = None) -> _FieldGroups:
        if obj is None:
            return ["upload", "title"]
        return ["title", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Document | None = None) -> list[str]:
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj: Document | None):
        return [] if obj is None else self.inlines

    def save_model(
        self, request: HttpRequest, obj: Document, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        upload = form.cleaned_data["upload"]
        result = services.document_upload(
            filename=upload.name,
            chunks=upload.chunks(),
            uploaded_by=signed_in_user(request),
            title=form.cleaned_data.get("title") or "",
        )
        # The admin's redirect after "add" needs the saved object; the result belongs to this
        # request (one ModelAdmin serves every thread), so it travels on the request.
        obj.pk = result.document.pk
        request._document_upload = result  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: Document, post_url_continue: str | None = None
    ):
        result: services.UploadResult | None = getattr(request, "_document_upload", None)
        if result is not None:
            document = result.document
            if not result.created:
                self.message_user(
                    request, f"That file is already in the library as “{document}”.", messages.INFO
                )
            elif document.status == Document.Status.FAILED:
                self.message_user(request, f"Not accepted: {document.error}", messages.ERROR)
            elif result.send_failed:
                self.message_user(
                    request,
                    f"“{document}” is queued; its ingestion will start when the workers are back.",
                    messages.WARNING,
                )
            else:
                self.message_user(
                    request, f"“{document}” is queued for ingestion.", messages.SUCCESS
                )
            return HttpResponseRedirect(
                reverse("admin:documents_document_change", args=[document.pk])
            )
        return super().response_add(request, obj, post_url_continue)

    def save_related(
        self, request: HttpRequest, form: forms.ModelForm, formsets: list, change: bool
    ) -> None:
        if change:
            super().save_related(request, form, formsets, change)

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        services.document_delete(document_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            services.document_delete(document_id=pk)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Document) -> str:
        colour = {"ready": "#1c7c3a", "failed": "#b3261e"}.get(obj.status, "#8a5a00")
        return format_html(
            '<b style="color:{}" title="{}">{}</b>', colour, obj.error, obj.get_status_display()
        )

    @admin.display(description="Progress")
    def progress(self, obj: Document) -> str:
        return f"{obj.pages_done}/{obj.pages_total}"

    # What is searched changes with these two, so viewing documents is not enough.
    @admin.action(
        description="Retry ingestion of the selected failed, stalled or still-queued documents",
        permissions=["change"],
    )
    def retry_ingest(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        queued = sum(
            services.document_requeue(document_id=pk)
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{queued} document(s) queued again.")

    @admin.action(
        description="Make the selected ready version the searched one", permissions=["change"]
    )
    def make_current(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        made = 0
        for document in queryset:
            try:
                services.document_make_current(document_id=document.pk)
            except ValueError as exc:
                self.message_user(request, f"{document}: {exc}", messages.ERROR)
            else:
                made += 1
        if made:
            self.message_user(request, f"{made} version(s) now searched.", messages.SUCCESS)


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["document", "page_number", "page_label", "section", "searchable", "short_text"]
    list_filter = ["searchable", "document"]
    search_fields = ["text", "section", "section_title"]
    list_select_related = ["document"]
    readonly_fields = [
        "document",
        "ordinal",
        "page_number",
        "page_label",
        "section",
        "section_title",
        "text",
        "searchable",
    ]
    exclude = ["embedding", "search_vector"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Text")
    def short_text(self, obj: Chunk) -> str:
        return obj.text[:120]
