"""The local judge: sentence embeddings plus explicit checks, no LLM, fully deterministic.

Three modes, picked by what the request carries:

- reference: cosine similarity of the answer to the reference answer (and to its best
  matching sentence, so a short answer is not taken for an off-topic one), gated by
  topicality, and the share of key facts it states (given, or derived from the reference);
- unanswerable: the documents do not cover the question, so a refusal is right and a
  substantive answer is wrong;
- grounded (no reference): the share of answer sentences that some passage supports.

In every mode an answer cut off mid-sentence loses a point, and numbers that neither the
passages, the reference nor the question contain are named and cost points. The
thresholds were calibrated on ../shared/eval/sample-qa.jsonl with all-MiniLM-L6-v2 (see
bench/judge_quality.py); another embedder needs a new calibration and a new CHECKS_VERSION.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ml.judging.base import Judge, JudgeError, JudgeRequest, Verdict, snap_score
from ml.prompting import CITATION_WITH_SPACE, is_decline, split_sentences

if TYPE_CHECKING:
    import numpy as np

    from ml.embeddings import Embedder

CHECKS_VERSION = "local-v1"

# Similarity of answer to reference: below TOPIC_LOW the answer is about something else,
# from TOPIC_HIGH on it is squarely on the question's topic. Unrelated reference answers in
# the sample set sit at 0.18 on average (99th percentile 0.58); a correct answer made of the
# source passage sits at 0.57-0.96; a reference cut at 60% keeps 0.7-0.97.
TOPIC_LOW, TOPIC_HIGH = 0.35, 0.7
# Closeness to the reference wording, which stands for completeness beyond the key facts.
CLOSE_LOW, CLOSE_HIGH = 0.45, 0.85
# With key facts, what the answer states weighs more than how it is worded.
FACT_WEIGHT = 0.6
# A refusal that is this close to the reference is the reference's own explanation.
REFERENCE_ECHO = 0.8
# An answer sentence counts as supported when a passage (or one of its sentences) is this
# similar to it. In the sample set, reference sentences score a median 0.65 against their
# source passage and 0.43 against the closest unrelated one (90th percentile 0.60).
SUPPORT_MIN = 0.55
# Sentences shorter than this ("No.", "Not by default.") carry a verdict, not a claim a
# passage could support, and are not counted.
CLAIM_WORDS = 4
# Question-to-passage similarity: at DECLINE_FINE or below no passage addresses the
# question and declining is right; from DECLINE_WRONG on a passage clearly does. Questions
# score 0.35-0.88 against their own source passage, mostly below 0.55 against others.
DECLINE_FINE, DECLINE_WRONG = 0.35, 0.6
# Answer-to-question similarity below which a grounded answer is off the question.
RELEVANCE_LOW, RELEVANCE_HIGH = 0.1, 0.35

REFUSAL_WHEN_ANSWERABLE = 1.0
ANSWER_WHEN_UNANSWERABLE = 0.5
# A cut-off answer loses a point, or a share of what it had when that is less: an answer
# already scored low for the key facts the cut removed is not charged twice.
TRUNCATION_PENALTY, TRUNCATION_SHARE = 1.0, 0.25
UNSUPPORTED_NUMBER_PENALTY, UNSUPPORTED_NUMBER_CAP = 1.0, 2.0

# A fragment this short without any sentence mark is a terse answer, not a cut-off one.
FRAGMENT_WORDS = 12
# Words a finished sentence does not end on; pronouns such as "this" or "that" are left out
# because they can ("... do not cover this.").
_DANGLING_WORDS = (
    "a an the and or nor but of to with by from than per into onto between including whose "
    "must shall should"
)
DANGLING = frozenset(_DANGLING_WORDS.split())
# Units that make a number a quantity worth deriving as a key fact (single letters such as
# "a" or "s" are left out: "10 a day" is not ten amperes).
_UNIT_WORDS = (
    "% percent °f °c f c ft feet foot inch inches mm cm m meter meters metre metres km fpm "
    "cfm gpm psig psi kpa pa hz khz db dba kw mw btu btuh btu/h ton tons lb lbs kg day days "
    "hour hours minute minutes min second seconds year years month months week weeks gal "
    "gallon gallons ach volt volts amp amps ppm"
)
UNITS = frozenset(_UNIT_WORDS.split())

_CITATION = CITATION_WITH_SPACE
_DASHES = re.compile(r"[\u2010-\u2015\u2212\u2043\ufe58\ufe63\uff0d]")
_NUMBER = re.compile(r"(?<![A-Za-z0-9.,])\d+(?:,\d{3})*(?:\.\d+)?")
_NUMBER_UNIT = re.compile(
    r"(?<![A-Za-z0-9.,])(\d+(?:,\d{3})*(?:\.\d+)?)([\s-]?(?:°\s?[FC]|%|[A-Za-z/]+))?"
)
_TOKEN = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?|%|[a-z][a-z0-9]*(?:\.\d+)?")
# Acronyms and codes: three capitals or more, or capitals with digits ("AHJ", "B31.5").
_ACRONYM = re.compile(r"\b(?:[A-Z]{3,}[0-9]*|[A-Z]+[0-9][A-Z0-9]*(?:\.\d+)?)\b")
_COMPOUND = re.compile(r"\b[A-Za-z]+(?:-[A-Za-z]+)+\b")
_CLOSERS = "\"')]}’”»"


def _clip(value: float, low: float, high: float) -> float:
    return min(1.0, max(0.0, (value - low) / (high - low)))


def _plain(text: str) -> str:
    """NFKC, one kind of dash, citation marks removed."""
    text = unicodedata.normalize("NFKC", text)
    return _CITATION.sub("", _DASHES.sub("-", text)).strip()


def _canonical_number(raw: str) -> str:
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return raw
    return format(value.normalize(), "f")  # "58.0" and "58" are the same claim


def numbers_in(text: str) -> set[str]:
    return {_canonical_number(m) for m in _NUMBER.findall(_plain(text))}


def _stem(token: str) -> str:
    if token[0].isdigit() or token == "%":
        return _canonical_number(token)
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        token = token[:-1]
    # A 7-letter prefix makes "dehumidify" meet "dehumidification", "door" meet "doors".
    return token[:7]


def _tokens(text: str) -> list[str]:
    return [_stem(t) for t in _TOKEN.findall(_plain(text).lower())]


def states_fact(fact: str, response_tokens: Sequence[str]) -> bool:
    """Whether the answer states ``fact``: its words in order, or all of them within a few
    words of each other ("limited dehumidification" in "dehumidify it to a limited
    extent"). Case, dashes, "30-days" against "30 days", "10 %" against "10%", "58.0"
    against "58" and plurals do not matter."""
    wanted = _tokens(fact)
    if not wanted:
        return False
    size = len(wanted)
    for start in range(len(response_tokens) - size + 1):
        if list(response_tokens[start : start + size]) == wanted:
            return True
    window = size + 6
    needed = set(wanted)
    return any(
        needed <= set(response_tokens[start : start + window])
        for start in range(max(1, len(response_tokens) - window + 1))
    )


def derive_key_facts(reference: str, question: str, limit: int = 4) -> tuple[str, ...]:
    """Key facts read off a reference answer when none are given: its quantities (a number
    with a unit), or where it has none its distinctive terms (acronyms and codes such as
    AHJ or B31.5, then hyphenated compounds). Whatever the question already contains is
    left out, so repeating the question earns nothing, and so are conversions in
    parentheses ("55 °F (12.8 °C)"): an answer may give either unit."""
    text = re.sub(r"\([^)]*\)", " ", _plain(reference))
    question_tokens = set(_tokens(question))
    facts: list[str] = []
    for match in _NUMBER_UNIT.finditer(text):
        number, unit = match.group(1), (match.group(2) or "").strip(" -")
        if _is_unit(unit) and _canonical_number(number) not in question_tokens:
            facts.append(f"{number}{unit}" if unit == "%" else f"{number} {unit}")
    if not facts:
        for pattern in (_ACRONYM, _COMPOUND):
            for match in pattern.finditer(text):
                if not set(_tokens(match.group(0))) <= question_tokens:
                    facts.append(match.group(0))
    unique: dict[str, str] = {}
    for fact in facts:
        unique.setdefault(" ".join(_tokens(fact)), fact)
    return tuple(list(unique.values())[:limit])


def _is_unit(word: str) -> bool:
    return bool(word) and word.lower().replace(" ", "") in UNITS


def truncation(text: str) -> str | None:
    """Why ``text`` looks cut off mid-sentence, or None when it ends properly."""
    plain = _plain(text).rstrip(_CLOSERS + " ")
    if not plain:
        return None
    tail = re.search(r"\b([A-Za-z]+)\W*$", plain)  # the last word, before any final mark
    if tail and tail.group(1) in DANGLING:
        return f"ends on a dangling '{tail.group(1)}'"
    if plain.endswith((".", "!", "?", "…")):
        return None
    if not re.search(r"[.!?]", plain) and len(plain.split()) <= FRAGMENT_WORDS:
        return None  # "10% per year; repair within 30 days" is an answer, not a cut
    return "ends mid-sentence"


def _show_number(text: str, canonical: str) -> str:
    """The number as the answer writes it, with its unit: "45 psig"."""
    for match in _NUMBER_UNIT.finditer(_plain(text)):
        if _canonical_number(match.group(1)) == canonical:
            number, unit = match.group(1), (match.group(2) or "").strip(" -")
            if _is_unit(unit):
                return f"{number}{unit}" if unit == "%" else f"{number} {unit}"
            return number
    return canonical


def _fmt(value: float) -> str:
    return f"{value:.2f}"


class _Vectors:
    """Embeddings by text, computed in one pass for what is known in advance and on demand
    for the rest."""

    def __init__(self, embedder: Embedder):
        self._embedder = embedder
        self._cache: dict[str, np.ndarray] = {}

    def prefetch(self, texts: Sequence[str]) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self._embedder.embed(missing), strict=True))

    def similarity(self, a: str, b: str) -> float:
        self.prefetch([a, b])
        return float(self._cache[a] @ self._cache[b])  # unit vectors: the dot is the cosine

    def best(self, text: str, candidates: Sequence[str]) -> tuple[float, int]:
        """The highest similarity of ``text`` to any candidate, and that candidate's index."""
        self.prefetch([text, *candidates])
        scores = [float(self._cache[text] @ self._cache[c]) for c in candidates]
        index = max(range(len(scores)), key=scores.__getitem__)
        return scores[index], index


def _passage_units(passages: Sequence[str]) -> list[str]:
    """Whole passages and their sentences: an answer sentence often restates one sentence
    of a long passage, which the whole passage's embedding dilutes."""
    units: list[str] = []
    for passage in passages:
        plain = _plain(passage)
        units.append(plain)
        units.extend(s.strip() for s in split_sentences(plain) if len(s.split()) >= 3)
    return [u for u in dict.fromkeys(units) if u]


def _reference_sentences(reference: str) -> list[str]:
    return [s.strip() for s in split_sentences(reference) if len(s.split()) >= CLAIM_WORDS]


def _texts_to_embed(request: JudgeRequest) -> list[str]:
    texts = [_plain(request.response), _plain(request.question)]
    if request.reference:
        reference = _plain(request.reference)
        texts.append(reference)
        texts.extend(_reference_sentences(reference))
    if not request.reference and request.answerable:
        texts.extend(_plain(p) for p in request.passages)
        texts.extend(_passage_units(request.passages))
        texts.extend(s.strip() for s in split_sentences(_plain(request.response)))
    return [t for t in texts if t]


class _Assessment:
    """What the checks found: the raw score, the comment's phrases and the figures."""

    def __init__(self, mode: str):
        self.mode = mode
        self.raw = 0.0
        self.findings: list[str] = []
        self.figures: dict[str, Any] = {"mode": mode}
        self.penalties: dict[str, float] = {}

    def note(self, finding: str) -> None:
        self.findings.append(finding)

    def penalise(self, name: str, points: float) -> None:
        if points > 0:
            self.penalties[name] = points

    def final(self) -> float:
        return max(0.0, self.raw - sum(self.penalties.values()))

    def comment(self, score: float) -> str:
        text = "; ".join(self.findings) or "no finding"
        return f"{text[0].upper()}{text[1:]}. Scored {score:.1f} of 5."

    def details(self) -> dict[str, Any]:
        rounded = {
            key: round(value, 4) if isinstance(value, float) else value
            for key, value in self.figures.items()
        }
        return {
            **rounded,
            "raw_score": round(self.raw, 4),
            "penalties": {key: round(value, 4) for key, value in self.penalties.items()},
        }


def _similarity_phrase(similarity: float) -> str:
    if similarity >= 0.85:
        return f"matches the reference closely (similarity {_fmt(similarity)})"
    if similarity >= TOPIC_HIGH:
        return f"is close to the reference (similarity {_fmt(similarity)})"
    if similarity >= 0.45:
        return f"is only loosely related to the reference (similarity {_fmt(similarity)})"
    return f"does not match the reference (similarity {_fmt(similarity)})"


def _facts_phrase(found: list[str], missing: list[str], derived: bool) -> str:
    total = len(found) + len(missing)
    label = "key fact" if total == 1 else "key facts"
    if derived:
        label += " taken from the reference"
    if not missing:
        return f"states {total} of {total} {label} ({', '.join(found)})"
    if not found:
        return f"states none of the {total} {label} (missing {', '.join(missing)})"
    return (
        f"states {len(found)} of {total} {label} ({', '.join(found)}; missing {', '.join(missing)})"
    )


def _unsupported_numbers(request: JudgeRequest, cut: bool) -> list[str]:
    """Numbers in the answer that no passage, no reference and not the question contain,
    as the answer writes them."""
    known = numbers_in(request.question) | numbers_in(request.reference or "")
    for passage in request.passages:
        known |= numbers_in(passage)
    plain = _plain(request.response)
    raws = _NUMBER.findall(plain)
    if cut and raws and plain.endswith(raws[-1]):
        raws.pop()  # a number cut in half ("5" of "58.0") is no claim; the cut is named anyway
    named: list[str] = []
    for raw in raws:
        canonical = _canonical_number(raw)
        shown = _show_number(plain, canonical)
        if canonical not in known and shown not in named:
            named.append(shown)
    return named


def _assess(request: JudgeRequest, vectors: _Vectors) -> _Assessment:
    response = _plain(request.response)
    if not request.answerable:
        mode = "unanswerable"
    elif request.reference:
        mode = "reference"
    else:
        mode = "grounded"
    found = _Assessment(mode)
    if not response:
        found.note("the answer is empty")
        return found
    declined = is_decline(request.response)
    cut = truncation(request.response)
    unsupported = _unsupported_numbers(request, cut is not None)
    found.figures.update(declined=declined, truncated=cut, unsupported_numbers=unsupported)

    if mode == "unanswerable":
        claims, complete = _judge_unanswerable(request, response, declined, vectors, found)
    elif mode == "reference":
        claims, complete = _judge_against_reference(request, response, declined, vectors, found)
    else:
        claims, complete = _judge_grounded(request, response, declined, vectors, found)

    if claims and unsupported:
        if request.reference:
            where = "neither the passages nor the reference contain"
        else:
            where = "no passage contains"
        found.note(f"states numbers that {where}: {', '.join(unsupported)}")
        found.penalise(
            "unsupported_numbers",
            min(UNSUPPORTED_NUMBER_CAP, UNSUPPORTED_NUMBER_PENALTY * len(unsupported)),
        )
    if cut and complete:
        found.note(cut)
        found.penalise("truncation", min(TRUNCATION_PENALTY, TRUNCATION_SHARE * found.raw))
    return found


# Each mode returns (claims, complete): whether numbers in the response are claims to check,
# and whether a cut-off ending should cost points (not for a refusal already scored low).


def _judge_unanswerable(
    request: JudgeRequest, response: str, declined: bool, vectors: _Vectors, found: _Assessment
) -> tuple[bool, bool]:
    echo = vectors.similarity(response, _plain(request.reference)) if request.reference else None
    if echo is not None:
        found.figures["similarity"] = echo
    if declined:
        found.raw = 5.0
        found.note("declines, which is right: the documents do not cover this question")
        return False, True
    if echo is not None and echo >= REFERENCE_ECHO:
        found.raw = 5.0
        found.note(
            "explains that the documents do not cover this, as the reference does "
            f"(similarity {_fmt(echo)})"
        )
        return False, True
    found.raw = ANSWER_WHEN_UNANSWERABLE
    found.note("gives an answer although the documents do not cover this question")
    return True, True


def _judge_against_reference(
    request: JudgeRequest, response: str, declined: bool, vectors: _Vectors, found: _Assessment
) -> tuple[bool, bool]:
    reference = _plain(request.reference or "")
    similarity = vectors.similarity(response, reference)
    found.figures["similarity"] = similarity
    if declined and similarity < REFERENCE_ECHO:
        found.raw = REFUSAL_WHEN_ANSWERABLE
        found.note("declines although the reference answers the question")
        return False, False
    derived = not request.key_facts
    facts = request.key_facts or derive_key_facts(reference, request.question)
    tokens = _tokens(response)
    stated = [fact for fact in facts if states_fact(fact, tokens)]
    missing = [fact for fact in facts if fact not in stated]
    # A short answer may restate one sentence of a long reference: topicality takes the
    # best of the whole and its sentences; closeness (completeness) the whole only.
    sentences = _reference_sentences(reference)
    focus = max(similarity, vectors.best(response, sentences)[0]) if sentences else similarity
    topicality = _clip(focus, TOPIC_LOW, TOPIC_HIGH)
    closeness = _clip(similarity, CLOSE_LOW, CLOSE_HIGH)
    if facts:
        coverage = len(stated) / len(facts)
        content = topicality * (FACT_WEIGHT * coverage + (1 - FACT_WEIGHT) * closeness)
    else:
        coverage = None
        content = topicality * (0.4 + 0.6 * closeness)
    found.raw = 5.0 * content
    found.figures.update(
        best_sentence_similarity=focus,
        topicality=topicality,
        closeness=closeness,
        key_facts=list(facts),
        key_facts_derived=derived,
        key_facts_found=stated,
        key_facts_missing=missing,
        coverage=coverage,
    )
    found.note(_similarity_phrase(similarity))
    if facts:
        found.note(_facts_phrase(stated, missing, derived))
    return True, True


def _judge_grounded(
    request: JudgeRequest, response: str, declined: bool, vectors: _Vectors, found: _Assessment
) -> tuple[bool, bool]:
    question = _plain(request.question)
    passages = [_plain(p) for p in request.passages if _plain(p)]
    if declined:
        if passages:
            addressed, index = vectors.best(question, passages)
        else:
            addressed, index = 0.0, -1
        wrongness = _clip(addressed, DECLINE_FINE, DECLINE_WRONG)
        found.raw = 5.0 - (5.0 - REFUSAL_WHEN_ANSWERABLE) * wrongness
        found.figures.update(question_passage_similarity=addressed, best_passage=index + 1)
        if not passages:
            found.note("declines, and no passages were retrieved")
        elif wrongness >= 1:
            found.note(
                f"declines although passage {index + 1} clearly addresses the question "
                f"(similarity {_fmt(addressed)})"
            )
        elif wrongness > 0:
            found.note(
                f"declines although passage {index + 1} partly addresses the question "
                f"(similarity {_fmt(addressed)})"
            )
        else:
            found.note(
                f"declines, and no passage addresses the question "
                f"(best similarity {_fmt(addressed)})"
            )
        return False, True
    sentences = [s.strip() for s in split_sentences(response) if s.strip()]
    sentences = [s for s in sentences if len(s.split()) >= CLAIM_WORDS] or [response]
    if not passages:
        found.raw = 0.0
        found.figures.update(grounded_share=0.0, sentences=len(sentences))
        found.note("no reference and no passages: nothing supports the answer")
        return True, True
    units = _passage_units(passages)
    unsupported = [s for s in sentences if vectors.best(s, units)[0] < SUPPORT_MIN]
    share = 1 - len(unsupported) / len(sentences)
    relevance = vectors.similarity(response, question)
    on_question = _clip(relevance, RELEVANCE_LOW, RELEVANCE_HIGH)
    found.raw = 5.0 * share * (0.5 + 0.5 * on_question)
    found.figures.update(
        grounded_share=share,
        sentences=len(sentences),
        supported_sentences=len(sentences) - len(unsupported),
        relevance=relevance,
    )
    supported = len(sentences) - len(unsupported)
    noun = "sentence is" if len(sentences) == 1 else "sentences are"
    found.note(f"{supported} of {len(sentences)} {noun} supported by the passages")
    if unsupported:
        first = unsupported[0]
        found.note(f'unsupported: "{first[:80]}{"…" if len(first) > 80 else ""}"')
    if on_question < 1:
        found.note(f"strays from the question (similarity {_fmt(relevance)})")
    return True, True


class LocalJudge(Judge):
    """Judges with an embedder and explicit checks. Thread-safe (the embedder locks its own
    model); constructing one costs nothing beyond the embedder it is given."""

    backend = "local"
    prompt_version = CHECKS_VERSION

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.model = embedder.name

    def judge(self, request: JudgeRequest) -> Verdict:
        return self._judge_all([request])[0]

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[Verdict | JudgeError]:
        return list(self._judge_all(requests))

    def _judge_all(self, requests: Sequence[JudgeRequest]) -> list[Verdict]:
        vectors = _Vectors(self.embedder)
        # One embedding pass over the texts of every request is far faster than one small
        # pass per request; what a check needs beyond these is embedded on demand.
        vectors.prefetch([text for request in requests for text in _texts_to_embed(request)])
        verdicts = []
        for request in requests:
            found = _assess(request, vectors)
            score = snap_score(found.final())
            verdicts.append(
                Verdict(
                    score=score,
                    comment=found.comment(score),
                    backend=self.backend,
                    model=self.model,
                    prompt_version=self.prompt_version,
                    details=found.details(),
                )
            )
        return verdicts


def key_fact_recall(facts: Sequence[str], response: str) -> float | None:
    """The share of ``facts`` the response states (None when there are none to state)."""
    if not facts:
        return None
    tokens = _tokens(response)
    return sum(states_fact(fact, tokens) for fact in facts) / len(facts)
