"""Web session keys, as the portal stores them: a keyed digest, never the key itself.

A session key is a bearer credential: whoever holds it is logged in as its owner. Rows
that remember which session asked or rated (Answer, Feedback, FeedbackRevision) keep an
HMAC of it under SECRET_KEY, so a reader of those rows (admin, exports, a database dump)
learns nothing that logs anyone in, while the session that made a row can still be
matched to it: ``filter(session_digest=session_key_digest(request.session.session_key))``.
"""

from __future__ import annotations

from django.db.models import Model
from django.utils.crypto import salted_hmac

_SALT = "plumbline.session-key"


def session_key_digest(session_key: str | None) -> str:
    """64 hex characters for a session key; "" stays "" (no session)."""
    if not session_key:
        return ""
    return salted_hmac(_SALT, session_key, algorithm="sha256").hexdigest()


def session_keys_replace_with_digests(model: type[Model], *, batch_size: int = 1000) -> int:
    """For the data migrations that hash the plain keys stored before: every non-empty
    ``session_digest`` of ``model`` (a historical model) holds a raw key and becomes its
    digest. Returns how many rows changed."""
    rows = model._default_manager.exclude(session_digest="").only("pk", "session_digest")
    batch: list[Model] = []
    changed = 0
    for row in rows.order_by("pk").iterator(chunk_size=batch_size):
        row.session_digest = session_key_digest(row.session_digest)  # type: ignore[attr-defined]
        batch.append(row)
        if len(batch) == batch_size:
            changed += model._default_manager.bulk_update(batch, ["session_digest"])
            batch = []
    if batch:
        changed += model._default_manager.bulk_update(batch, ["session_digest"])
    return changed
