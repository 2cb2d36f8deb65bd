"""Numbers in an answer come from its prompt: a logits processor that lets the model
write a number only where that number, as written, appears in the passages or question.

A small model copies the words of a requirement and invents its value ("between 13 feet
and 20 feet" for a temperature): the number is where an answer is most often wrong and
where a wrong answer costs most. Constraining decoding keeps the model's own choice of
what to say, and of which number, but among the ones the documents give. Everything else
it writes is untouched.

How: the text generated so far ends in a number being written (its "tail", possibly
empty). A token that would extend the tail is allowed only if the result is still the
start of some number in the prompt; a token that would end it is allowed only if the tail
is a whole number of the prompt. Only tokens that hold a digit or start with "." or ","
can do either; for them the check runs per distinct tail and is cached. All other tokens
form one group, allowed or not as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_TAIL = re.compile(r"\d[\d.,]*$")
_SEPARATORS = ".,"
# Generated tokens read back to find the tail: longer than any number a document writes.
_TAIL_TOKENS = 32


def numbers_in(text: str) -> frozenset[str]:
    """Every number written in ``text``, as written ("12.8", "1,200", "3", "410")."""
    return frozenset(match.group(0) for match in NUMBER.finditer(text))


def _starts_of(numbers: frozenset[str]) -> frozenset[str]:
    """Every start of every number: "12.8" -> "1", "12", "12.", "12.8"."""
    return frozenset(number[:end] for number in numbers for end in range(1, len(number) + 1))


@dataclass(frozen=True)
class NumberVocabulary:
    """What the grounding needs to know of one model's vocabulary: each token's text, and
    which tokens can write or end a number (the rest are one group)."""

    texts: tuple[str, ...]
    special: np.ndarray  # ids of tokens that hold a digit or start with "." or ","
    others: np.ndarray  # boolean mask over the vocabulary: every other token

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> NumberVocabulary:
        special = [
            i
            for i, text in enumerate(texts)
            if text[:1] in _SEPARATORS or any(c.isdigit() for c in text)
        ]
        others = np.ones(len(texts), dtype=bool)
        others[special] = False
        return cls(tuple(texts), np.asarray(special, dtype=np.intp), others)


@dataclass
class NumberGrounding:
    """A logits processor for one answer (``__call__(input_ids, scores) -> scores``, the
    form llama-cpp-python calls with numpy arrays). ``prompt_tokens``: how many of the ids
    it is given are the prompt's; the rest are the answer so far."""

    vocabulary: NumberVocabulary
    source: str
    prompt_tokens: int
    # When the model itself goes to write a number, the numbers of ``preferred`` (the first
    # passage, the retriever's best) get this logit bonus over the prompt's other numbers.
    preferred: str = ""
    prefer_bias: float = 0.0
    _whole: frozenset[str] = field(init=False)
    _starts: frozenset[str] = field(init=False)
    _preferred: frozenset[str] = field(init=False)
    _masks: dict[str, np.ndarray] = field(init=False, default_factory=dict)
    _favoured: dict[str, np.ndarray] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._whole = numbers_in(self.source)
        self._starts = _starts_of(self._whole)
        self._preferred = (
            numbers_in(self.preferred) & self._whole if self.prefer_bias else frozenset()
        )

    def tail(self, answer_ids: Sequence[int]) -> str:
        texts = self.vocabulary.texts
        recent = "".join(texts[int(i)] for i in answer_ids[-_TAIL_TOKENS:] if 0 <= i < len(texts))
        match = _TAIL.search(recent)
        return match.group(0) if match else ""

    def allowed(self, answer_ids: Sequence[int], size: int) -> np.ndarray | None:
        """The tokens that may come next (a mask of ``size``), or None when any may."""
        tail = self.tail(answer_ids)
        allowed = self._masks.get(tail)
        if allowed is None:
            allowed = self._masks[tail] = self._allowed(tail, size)
        return None if allowed.all() else allowed

    def __call__(self, input_ids: Sequence[int], scores: np.ndarray) -> np.ndarray:
        answer = input_ids[self.prompt_tokens :]
        allowed = self.allowed(answer, len(scores))
        out = scores
        if allowed is not None:
            out = np.array(scores, copy=True)
            out[~allowed] = -np.inf
        if self._preferred:
            favoured = self.favoured(answer, out)
            if favoured is not None:
                out = np.array(out, copy=True)
                out[favoured] += self.prefer_bias
        return out

    def favoured(self, answer_ids: Sequence[int], scores: np.ndarray) -> np.ndarray | None:
        """The tokens that write a preferred number from here (a mask), when the model's own
        first choice is a token with a digit; else None: whether to write a number, and
        when, stay the model's."""
        top = int(np.argmax(scores))
        texts = self.vocabulary.texts
        if top >= len(texts) or not any(c.isdigit() for c in texts[top]):
            return None
        tail = self.tail(answer_ids)
        favoured = self._favoured.get(tail)
        if favoured is None:
            favoured = np.zeros(len(scores), dtype=bool)
            starts = _starts_of(self._preferred)
            for token in self.vocabulary.special:
                text = tail + texts[token]
                found = list(NUMBER.finditer(text)) if token < len(scores) else []
                if found:
                    last = found[-1]
                    ends = last.end() == len(text)
                    favoured[token] = (
                        (last.group(0) in starts) if ends else (last.group(0) in self._preferred)
                    )
            self._favoured[tail] = favoured
        return favoured if favoured.any() else None

    def _allowed(self, tail: str, size: int) -> np.ndarray:
        allowed = np.zeros(size, dtype=bool)
        others = self.vocabulary.others
        if self._ends_well(tail):
            allowed[: len(others)] = others
        texts = self.vocabulary.texts
        for token in self.vocabulary.special:
            if token < size and self._fits(tail + texts[token]):
                allowed[token] = True
        if not allowed.any():  # no way on (cannot happen from a tail this allowed): let it be
            allowed[:] = True
        return allowed

    def _ends_well(self, tail: str) -> bool:
        """Whether the number being written may end here (a token without digits follows)."""
        if not tail:
            return True
        if tail[-1] in _SEPARATORS:  # "55." then a space: the full stop ends the sentence
            return tail[:-1] in self._whole
        return tail in self._whole

    def _fits(self, text: str) -> bool:
        """Whether ``text`` (the tail and one more token) writes only numbers of the prompt,
        the last of which may still be under way."""
        for match in NUMBER.finditer(text):
            number, rest = match.group(0), text[match.end() :]
            if not rest:  # still being written
                if number not in self._starts:
                    return False
            elif rest[0] in _SEPARATORS and len(rest) == 1:  # "12." may become "12.8"
                if number + rest not in self._starts and number not in self._whole:
                    return False
            elif number not in self._whole:
                return False
        return True
