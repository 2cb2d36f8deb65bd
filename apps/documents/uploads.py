"""Upload limits applied while the request body streams in, before anything is spooled
past them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest

# Room for the multipart framing and the form's other fields around the files.
REQUEST_OVERHEAD_BYTES = 1024 * 1024


def request_too_large(request: HttpRequest, *, max_files: int | None = None) -> bool:
    """True when the declared body is larger than the most files one upload may carry
    (``max_files``, by default ``DOCUMENT_UPLOAD_MAX_FILES``), so it is refused before a
    byte of it is read."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    most = (max_files or settings.DOCUMENT_UPLOAD_MAX_FILES) * settings.DOCUMENT_MAX_BYTES
    return declared > most + REQUEST_OVERHEAD_BYTES


class DocumentUploadLimits(FileUploadHandler):
    """Skips a file as soon as it passes ``DOCUMENT_MAX_BYTES`` (what was spooled of it is
    deleted and the rest is read past, not stored) and every file after the first
    ``max_files`` (by default ``DOCUMENT_UPLOAD_MAX_FILES``; an empty one among those goes
    through: it costs nothing and is refused as empty). ``refused`` lists each skipped file
    with the reason, for the view to show; the files within the limits go on to the usual
    handlers."""

    def __init__(self, request: HttpRequest | None = None, *, max_files: int | None = None) -> None:
        super().__init__(request)
        self.refused: list[tuple[str, str]] = []
        self.files_seen = 0
        self.max_files = max_files or settings.DOCUMENT_UPLOAD_MAX_FILES

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        self.files_seen += 1

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        # Skipped at its first bytes, not in new_file: Django closes every handler's current
        # file on a skip, and before the next handlers' new_file that is the previous file.
        if self.files_seen > self.max_files:
            self._refuse(
                f"One upload takes at most {self.max_files} "
                f"{'file' if self.max_files == 1 else 'files'}; upload it again in another batch."
            )
        if start + len(raw_data) > settings.DOCUMENT_MAX_BYTES:
            limit_mb = settings.DOCUMENT_MAX_BYTES / (1024 * 1024)
            self._refuse(f"The file is larger than the {limit_mb:.0f} MB limit.")
        return raw_data

    def _refuse(self, reason: str) -> None:
        self.refused.append((self.file_name or "unnamed", reason))
        raise SkipFile

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler stores the file


def apply_limits(request: HttpRequest, *, max_files: int | None = None) -> DocumentUploadLimits:
    """Puts the limits in front of the request's upload handlers. Call it before anything
    reads ``request.POST`` or ``request.FILES`` (so in a view that is CSRF-exempt and checks
    the token itself afterwards): the limits then apply while the body streams in."""
    limits = DocumentUploadLimits(request, max_files=max_files)
    request.upload_handlers.insert(0, limits)
    return limits
