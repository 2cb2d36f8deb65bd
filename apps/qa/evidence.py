"""Evidence beside an answer: the sentences of each cited passage that support it.

Engineers check a requirement against its source before they use it. For every passage an
answer cites, the sentences the model was shown of it (the focused sentences in the stored
prompt; the whole passage for prompts without them) are compared with the answer's
sentences that cite it: embedder cosine, plus a bonus for each of the answer's numbers the
sentence states ("55°F" in the answer, "55°F (12.8°C) dry bulb." in the passage). The best
one is kept with the short fragments beside it in the passage, and a short fragment (a
bare value: "55°F (12.8°C) dry bulb.") with both its neighbours, the heading before it
and the sentence after, which say what the value is for. The answer text itself is
never changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

import numpy as np

from ml.prompting import (
    CITATION,
    CITATION_WITH_SPACE,
    PASSAGE_HEADER,
    mark_numbers,
    split_sentences,
)

Embed = Callable[[Sequence[str]], np.ndarray]

NUMBER_WEIGHT = 0.2  # added for the share of the answer sentence's numbers a sentence states
SHORT_FRAGMENT = 60  # characters: a neighbour this short (a heading, a bare value) comes along
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_QUESTION = "\n\nQuestion: "


class Evidence(TypedDict):
    """One cited passage's supporting sentences, as ``Answer.evidence`` stores them."""

    number: int  # [n] in the answer
    chunk_id: int
    sentences: list[str]  # in passage order, whitespace collapsed
    similarity: float  # the best sentence's cosine with the answer sentence citing it


def sentences_of(text: str) -> list[str]:
    """A passage's sentences as the prompt's focused sentences spell them."""
    return [s for s in (" ".join(p.split()) for p in split_sentences(text)) if len(s) > 3]


def prompt_passages(prompt_messages: Sequence[dict[str, str]]) -> dict[int, str]:
    """The passage texts the model was shown, by number, read back from a stored prompt
    (``ml.prompting.build_messages``); empty when the prompt has another shape."""
    content = next((m["content"] for m in prompt_messages if m.get("role") == "user"), "")
    end = content.rfind(_QUESTION)
    if end < 0:
        return {}
    context = content[:end]
    headers = list(PASSAGE_HEADER.finditer(context))
    texts: dict[int, str] = {}
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        stop = following.start() if following else len(context)
        texts[int(header.group(1))] = context[header.end() : stop].strip()
    return texts


def claims_by_number(answer: str) -> dict[int, list[str]]:
    """The answer's sentences (marks removed) under each number they cite; a mark after the
    full stop ("... 55°F. [1] Offices ...") belongs to the sentence before it."""
    claims: dict[int, list[str]] = {}
    previous = ""

    def add(numbers: list[int], body: str) -> None:
        for number in numbers:
            if body and body not in claims.setdefault(number, []):
                claims[number].append(body)

    for sentence in split_sentences(answer):
        lead = CITATION_WITH_SPACE.match(sentence)
        if lead and previous:
            add(mark_numbers(lead.group(0)), previous)
            sentence = sentence[lead.end() :]
        numbers = [n for m in CITATION.finditer(sentence) for n in mark_numbers(m.group(0))]
        body = " ".join(CITATION_WITH_SPACE.sub("", sentence).split())
        if body.strip(".!? "):
            add(numbers, body)
            previous = body
    return claims


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def find_evidence(
    *,
    answer: str,
    citations: Sequence[Mapping[str, Any]],
    shown: dict[int, str],
    passages: dict[int, str],
    embed: Embed,
) -> list[Evidence]:
    """For each cited passage (``citations``: the answer's cited records, with ``number``
    and ``chunk_id``), its supporting sentences. ``shown``: what the prompt showed of each
    passage by number; ``passages``: the whole passage texts by chunk id."""
    claims = claims_by_number(answer)
    every_claim = [c for cs in claims.values() for c in cs]
    plans: list[tuple[Mapping[str, Any], list[str], list[str], list[str]]] = []
    for cited in citations:
        whole = sentences_of(passages.get(cited["chunk_id"], ""))
        candidates = sentences_of(shown.get(cited["number"], "")) or whole
        asked = claims.get(cited["number"]) or every_claim
        if candidates and asked:
            plans.append((cited, whole, candidates, asked))
    if not plans:
        return []
    texts = list(dict.fromkeys(t for _, _, cs, qs in plans for t in [*cs, *qs]))
    vectors = dict(zip(texts, embed(texts), strict=True))
    found: list[Evidence] = []
    for cited, whole, candidates, asked in plans:
        matrix = np.array([vectors[c] for c in candidates])
        cosine = np.array([vectors[q] for q in asked]) @ matrix.T  # claims x candidates
        shares = np.array(
            [
                [
                    len(_numbers(q) & _numbers(c)) / len(_numbers(q)) if _numbers(q) else 0.0
                    for c in candidates
                ]
                for q in asked
            ]
        )
        scores = (cosine + NUMBER_WEIGHT * shares).max(axis=0)
        best = int(scores.argmax())
        chosen = {candidates[best]}
        if candidates[best] in whole:
            place = whole.index(candidates[best])
            fragment = len(whole[place]) < SHORT_FRAGMENT  # a bare value needs its context
            for near in (place - 1, place + 1):
                if 0 <= near < len(whole) and (fragment or len(whole[near]) < SHORT_FRAGMENT):
                    chosen.add(whole[near])
        order = whole if all(c in whole for c in chosen) else candidates
        found.append(
            Evidence(
                number=cited["number"],
                chunk_id=cited["chunk_id"],
                sentences=[s for s in order if s in chosen],
                similarity=round(float(cosine[:, best].max()), 4),
            )
        )
    return found
