"""Gunicorn hooks for the web processes that ``manage.py up`` starts."""

from __future__ import annotations

import logging
import threading
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Loads the embedding model in the background right after a worker starts, so the
    first search does not pay the model's load time (several seconds on a small CPU)."""

    def warm() -> None:
        try:
            from apps.documents.embedding import get_embedder

            get_embedder().embed(["warm-up"])
        except Exception:  # a failed warm-up only costs the first search its latency
            logging.getLogger(__name__).exception("embedder warm-up failed")

    threading.Thread(target=warm, name="embedder-warm-up", daemon=True).start()
