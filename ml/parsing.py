"""Text out of PDF, Markdown and plain-text files, one record per page.

Keeps what citations need: the 1-based PDF page index (what a viewer shows), the printed
page label when the page carries one, and whether the page had a text layer at all.
Running headers and footers that repeat on most pages are dropped from the text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PDF = "pdf"
MARKDOWN = "markdown"
TEXT = "text"

EXTENSIONS = {
    ".pdf": PDF,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".txt": TEXT,
    ".text": TEXT,
}

# Signatures of formats people rename by mistake, for a precise error message.
_SIGNATURES = [
    (b"%PDF-", "a PDF"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (or a Word/Excel file)"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file"),
    (b"\x7fELF", "a Linux executable"),
    (b"MZ", "a Windows executable"),
    (b"\x1f\x8b", "a gzip archive"),
]

# Fewer body characters than this and a page counts as having no text layer (a scan).
MIN_PAGE_CHARS = 20


class DocumentError(Exception):
    """A file that cannot be ingested. The message is written for the person who uploaded it."""


@dataclass(frozen=True)
class PageText:
    number: int  # 1-based page index, what a PDF viewer shows
    label: str  # the printed page number, "" when the page shows none
    text: str
    has_text_layer: bool
    ocr: bool = False


def describe_content(head: bytes) -> str:
    for signature, description in _SIGNATURES:
        if head.startswith(signature):
            return description
    if b"\x00" in head[:4096]:
        return "binary data"
    return "text"


def detect_kind(filename: str, head: bytes) -> str:
    """The document kind from the name's extension, checked against the content."""
    extension = Path(filename).suffix.lower()
    kind = EXTENSIONS.get(extension)
    if kind is None:
        supported = ", ".join(sorted(EXTENSIONS))
        raise DocumentError(f"'{extension or filename}' files are not supported (use {supported})")
    if not head:
        raise DocumentError("the file is empty")
    content = describe_content(head)
    if kind == PDF:
        # The PDF header may sit behind a few bytes of junk; readers accept up to 1 KiB.
        if b"%PDF-" not in head[:1024]:
            raise DocumentError(f"the file is named {extension} but its content is {content}")
    elif content != "text":
        raise DocumentError(f"the file is named {extension} but its content is {content}")
    return kind


def extract_pages(
    path: Path,
    kind: str,
    *,
    max_pages: int,
    ocr: Callable[[Path, int], str] | None = None,
) -> list[PageText]:
    if kind == PDF:
        return _pdf_pages(path, max_pages=max_pages, ocr=ocr)
    text = _read_text(path)
    if kind == MARKDOWN:
        return [_text_page(1, text)]
    # Plain text: a form feed separates pages (what pdftotext writes).
    pages = text.split("\f")
    if len(pages) > max_pages:
        raise DocumentError(f"the file has {len(pages)} pages, over the limit of {max_pages}")
    return [_text_page(number, page) for number, page in enumerate(pages, start=1)]


def _text_page(number: int, text: str) -> PageText:
    text = clean_text(text)
    return PageText(number=number, label="", text=text, has_text_layer=len(text) >= 1)


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise DocumentError("the file is empty")
    if b"\x00" in data:
        raise DocumentError("the file holds binary data, not text")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DocumentError("the file is not readable text (neither UTF-8 nor Windows-1252)")


# --- PDF --------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffe\uffff]")
# UFC-style change markers: \1\ opens and /1/ closes the text of change 1.
_CHANGE_MARK = re.compile(r"\\\d{1,2}\\|(?<![\w/])/\d{1,2}/(?![\w/])")
_SPACES = re.compile(r"[ \t\u00a0]+")
_LABEL_LINE = re.compile(
    r"^(?:page\s+)?(?P<label>\d{1,4}|[ivxlcdm]{1,8}|[A-Z]-\d{1,3})(?:\s+of\s+\d{1,5})?$",
    re.IGNORECASE,
)
_LABEL_INLINE = re.compile(r"\bpage\s+(?P<label>\d{1,4})\s+of\s+\d{1,5}\b", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
EDGE_LINES = 4


def clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\x02", "-")  # pdfium's soft hyphen
    text = _CONTROL.sub("", text)
    text = _CHANGE_MARK.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(lines).strip()


def _pdf_pages(
    path: Path, *, max_pages: int, ocr: Callable[[Path, int], str] | None
) -> list[PageText]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        message = str(exc).lower()
        if "password" in message:
            raise DocumentError(
                "the PDF is encrypted with a password; upload an unlocked copy"
            ) from exc
        raise DocumentError(f"the PDF is damaged and cannot be opened ({exc})") from exc
    try:
        count = len(pdf)
        if count == 0:
            raise DocumentError("the PDF has no pages")
        if count > max_pages:
            raise DocumentError(f"the PDF has {count} pages, over the limit of {max_pages}")
        raw: list[list[str]] = []
        for index in range(count):
            try:
                page = pdf[index]
                textpage = page.get_textpage()
                text = textpage.get_text_bounded()
                textpage.close()
                page.close()
            except pdfium.PdfiumError as exc:
                raise DocumentError(f"page {index + 1} of the PDF cannot be read ({exc})") from exc
            raw.append([line for line in clean_text(text).split("\n") if line])
    finally:
        pdf.close()

    boilerplate = _running_lines(raw)
    pages: list[PageText] = []
    for index, lines in enumerate(raw):
        label = _page_label(lines)
        body = _strip_edges(lines, boilerplate, label)
        text = "\n".join(body).strip()
        has_text = len(text) >= MIN_PAGE_CHARS
        used_ocr = False
        if not has_text and ocr is not None:
            # A scan shows the same running header and page number as the other pages.
            lines = [line for line in clean_text(ocr(path, index)).split("\n") if line]
            recognised = "\n".join(_strip_edges(lines, boilerplate, label)).strip()
            if len(recognised) >= MIN_PAGE_CHARS:
                text = "\n".join(filter(None, [text, recognised]))
                used_ocr = True
        pages.append(
            PageText(
                number=index + 1, label=label, text=text, has_text_layer=has_text, ocr=used_ocr
            )
        )
    return pages


def _shape(line: str) -> str:
    return _DIGITS.sub("#", line.lower())


def _running_lines(pages: list[list[str]]) -> set[str]:
    """Shapes of lines at the top or bottom of at least half the pages: headers and footers."""
    if len(pages) < 2:
        return set()
    counts: Counter[str] = Counter()
    for lines in pages:
        edges = {_shape(line) for line in lines[:EDGE_LINES] + lines[-EDGE_LINES:]}
        counts.update(edges)
    threshold = max(2, (len(pages) + 1) // 2)
    return {shape for shape, n in counts.items() if n >= threshold}


def _page_label(lines: list[str]) -> str:
    edges = lines[:EDGE_LINES] + lines[-EDGE_LINES:]
    for line in edges:
        match = _LABEL_LINE.match(line)
        if match:
            return match.group("label")
    for line in edges:
        match = _LABEL_INLINE.search(line)
        if match:
            return match.group("label")
    return ""


def _strip_edges(lines: list[str], boilerplate: set[str], label: str) -> list[str]:
    body = list(lines)
    for _ in range(EDGE_LINES + 1):
        if body and (_shape(body[0]) in boilerplate or (label and body[0] == label)):
            body.pop(0)
        else:
            break
    for _ in range(EDGE_LINES + 1):
        if body and (_shape(body[-1]) in boilerplate or (label and body[-1] == label)):
            body.pop()
        else:
            break
    return body


# --- OCR ----------------------------------------------------------------------------------


def tesseract_ocr() -> Callable[[Path, int], str] | None:
    """An OCR function backed by Debian's tesseract, or None when it is not installed."""
    binary = shutil.which("tesseract")
    if binary is None:
        return None

    def recognise(path: Path, index: int) -> str:
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(str(path))
        try:
            pixels = pdf[index].render(scale=300 / 72, grayscale=True).to_numpy()
        finally:
            pdf.close()
        # A binary PGM, which tesseract reads from stdin as it is (no imaging library needed).
        pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)[:, :, 0]
        header = b"P5\n%d %d\n255\n" % (pixels.shape[1], pixels.shape[0])
        result = subprocess.run(
            [binary, "stdin", "stdout", "-l", "eng"],
            input=header + pixels.tobytes(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        return result.stdout.decode("utf-8", errors="replace") if result.returncode == 0 else ""

    return recognise


def read_title(path: Path, kind: str) -> str:
    """The document's own title: PDF metadata, or a Markdown file's first top heading."""
    if kind == PDF:
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError:
            return ""
        try:
            title = (pdf.get_metadata_dict().get("Title") or "").strip()
        finally:
            pdf.close()
        return " ".join(title.split())[:300]
    if kind == MARKDOWN:
        for line in _read_text(path).splitlines()[:50]:
            if line.startswith("# "):
                return line[2:].strip()[:300]
    return ""
