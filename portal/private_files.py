"""Files that hold secrets (the generated SECRET_KEY, the demo password), private from
their first byte.

``write_text`` then ``chmod`` leaves a moment in which the secret sits in a file that
anyone on the machine may read (mode 0644 under the usual umask). Here the text goes to
a temporary file that ``os.open`` creates with mode 0600 (a umask can only narrow it),
which then takes the file's name in one step: a reader sees the whole file or none.
No Django here: settings use it before Django is configured.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PRIVATE_MODE = 0o600


def private_file_write(path: Path, text: str, *, replace: bool = True) -> bool:
    """Writes ``text`` to ``path`` (mode 0600). With ``replace=False`` a file already at
    ``path`` is kept, so of several processes starting at once the first one's text wins
    and the others read it; returns whether this call's text is the one at ``path``."""
    staging = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(staging, path)
            return True
        try:
            os.link(staging, path)
        except FileExistsError:
            return False
        return True
    finally:
        staging.unlink(missing_ok=True)
