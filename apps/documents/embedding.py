"""The configured embedder, loaded once per process on first use."""

from __future__ import annotations

from django.conf import settings

from apps.documents.models import EMBEDDING_DIMENSIONS
from ml.embeddings import RememberingEmbedder, SentenceTransformerEmbedder, load_embedder


def get_embedder() -> SentenceTransformerEmbedder:
    return load_embedder(
        settings.EMBEDDING_MODEL_PATH or None,
        expected_dimensions=EMBEDDING_DIMENSIONS,
        batch_size=settings.EMBEDDING_BATCH_SIZE,
    )


_remembering: RememberingEmbedder | None = None


def remembering_embedder() -> RememberingEmbedder:
    """The embedder for questions and passage sentences at answer time (search, focused
    prompts, evidence): it remembers what it has embedded, so a question is embedded once
    per answer and a passage's sentences once per process, not once per question."""
    global _remembering
    if _remembering is None:
        _remembering = RememberingEmbedder(get_embedder())
    return _remembering


def passage_text(*, section: str, section_title: str, text: str) -> str:
    """What gets embedded for a chunk: its heading first when the text does not start with it,
    so a passage in the middle of a long section still carries the section's subject."""
    heading = f"{section} {section_title}".strip()
    if heading and not text.startswith(section):
        return f"{heading}\n{text}"
    return text
