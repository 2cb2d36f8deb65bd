"""JSON Lines files, read one way everywhere: numbered non-blank lines, and all-or-nothing
parsing where a bad line is named by file and number."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class JsonlError(ValueError):
    """A file or line that cannot be read; the message names the file and line."""


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JsonlError(f"{path}: cannot be read as UTF-8 text ({exc})") from exc


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for every line that is not blank."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def read_records(path: Path, parse: Callable[[Any], T], *, what: str) -> list[T]:
    """Every line of ``path`` as JSON, turned into a record by ``parse``; the first line
    that is not JSON or that ``parse`` rejects (KeyError, IndexError, TypeError,
    ValueError) raises JsonlError: "path:line: not <what> (reason)"."""
    records = []
    for number, line in numbered_lines(read_text(path)):
        try:
            records.append(parse(json.loads(line)))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise JsonlError(f"{path}:{number}: not {what} ({exc})") from exc
    return records
