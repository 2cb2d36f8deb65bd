"""A bias toward copying from the passages: once an answer has started to restate a
passage, a logits processor raises the token that continues the passage's own wording.

A small model begins a requirement in the passage's words and then drifts ("The minimum
temperature for forklift areas should be between 13 feet and ..."): the drift is where
the number, the unit or the condition is lost. Raising the passage's next token, and only
while the last tokens written match the passage, keeps the model's own choice of what to
say and of when to stop copying (the bias is finite: a strong enough preference of the
model's still wins), the way prompt-lookup decoding and pointer-generator copying use the
source. Nothing is raised before a match but the first token: there the openings of
passage [1]'s sentences (the retriever's best) may get a smaller bonus, so an answer that
could restate any passage rather restates the best one; what it then says is its own.

How: every run of ``min_match`` tokens in the source indexes the positions that follow it.
At each step the answer's last ``min_match`` tokens are looked up; among the places they
occur, those with the longest match (read backwards up to ``max_match`` tokens) vote for
their next token, which gets ``bias`` added to its logit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class CopyBias:
    """A logits processor for one answer (``__call__(input_ids, scores) -> scores``, the
    form llama-cpp-python calls with numpy arrays). ``source``: the token ids an answer may
    copy from; ``prompt_tokens``: how many of the ids it is given are the prompt's."""

    source: Sequence[int]
    prompt_tokens: int
    bias: float = 4.0
    min_match: int = 2
    max_match: int = 16
    # The first token of each sentence an answer should rather open with (passage [1]'s,
    # the retriever's best), and the bonus they get at the answer's first token only.
    openings: Sequence[int] = ()
    opening_bias: float = 0.0
    _after: dict[tuple[int, ...], list[int]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.min_match < 1:
            raise ValueError("min_match must be at least 1")
        self.source = [int(t) for t in self.source]
        after: dict[tuple[int, ...], list[int]] = defaultdict(list)
        n = self.min_match
        for start in range(len(self.source) - n):
            after[tuple(self.source[start : start + n])].append(start + n)
        self._after = dict(after)

    def continuations(self, answer_ids: Sequence[int]) -> list[int]:
        """The source tokens that would continue the longest copy the answer ends in."""
        n = self.min_match
        if len(answer_ids) < n:
            return []
        answer = [int(t) for t in answer_ids[-self.max_match :]]
        places = self._after.get(tuple(answer[-n:]))
        if not places:
            return []
        best, voted = 0, []
        for place in places:
            length = n
            while (
                length < len(answer)
                and place - length - 1 >= 0
                and self.source[place - length - 1] == answer[-length - 1]
            ):
                length += 1
            if length > best:
                best, voted = length, [place]
            elif length == best:
                voted.append(place)
        return sorted({self.source[place] for place in voted})

    def __call__(self, input_ids: Sequence[int], scores: np.ndarray) -> np.ndarray:
        answer = input_ids[self.prompt_tokens :]
        if not len(answer):
            tokens, bias = sorted(set(self.openings)), self.opening_bias
        else:
            tokens, bias = self.continuations(answer), self.bias
        tokens = [t for t in tokens if t < len(scores)]
        if not tokens or bias == 0:
            return scores
        out = np.array(scores, copy=True)
        out[tokens] += bias
        return out
