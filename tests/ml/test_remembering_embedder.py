"""The answer-time embedder remembers what it embedded: the same vectors, each text
embedded once, the oldest forgotten beyond its size; answers compare with references
without their citation marks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ml.embeddings import RememberingEmbedder, answer_similarity, load_embedder


class Counting:
    def __init__(self) -> None:
        self.inner = load_embedder()
        self.name, self.dimensions = self.inner.name, self.inner.dimensions
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return self.inner.embed(texts)


def test_each_text_is_embedded_once_and_the_vectors_are_the_same():
    counting = Counting()
    remembering = RememberingEmbedder(counting, size=3)
    texts = ["Heat to 55°F.", "Ducts must be sealed.", "Heat to 55°F."]
    vectors = remembering.embed(texts)
    assert np.allclose(vectors, counting.inner.embed(texts), atol=1e-6)
    assert counting.seen == ["Heat to 55°F.", "Ducts must be sealed."]
    remembering.embed(["Ducts must be sealed.", "Provide floor drains."])
    assert counting.seen[-1] == "Provide floor drains." and len(counting.seen) == 3
    # Size 3: a fourth text pushes out the least recently used one ("Heat to 55°F.").
    remembering.embed(["Vent to the outside."])
    remembering.embed(["Heat to 55°F."])
    assert counting.seen.count("Heat to 55°F.") == 2
    assert remembering.embed([]).shape == (0, counting.dimensions)


def test_answer_similarity_leaves_the_citation_marks_out():
    counting = Counting()
    reference = "Heat forklift areas to at least 55°F."
    cited = answer_similarity(counting, "Forklift areas must be at least 55°F [1] [2].", reference)
    plain = answer_similarity(counting, "Forklift areas must be at least 55°F.", reference)
    assert abs(cited - plain) < 1e-6
    assert counting.seen[0] == "Forklift areas must be at least 55°F." == counting.seen[2]
    # An answer that is nothing but marks compares as an empty text, not as "[1]".
    assert answer_similarity(counting, "[1]", reference) < plain
